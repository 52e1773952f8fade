"""`install-entry`: set a freshly installed system (under `root`) up to boot from its AoE disk.

Idempotent: every step compares before it writes, so a second run changes nothing. Everything
is derived from the installed system (its fstab, its /usr/lib/kernel/cmdline), never from the
installer's own boot.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from aoeboot import bootfiles, driver, grubdefault, initramfs, lock, nmconf, paths, rootdev
from aoeboot import config as configuration
from aoeboot.errors import AoebootError
from aoeboot.fsutil import under
from aoeboot.hostopts import host_options
from aoeboot.target import Target

log = logging.getLogger(__name__)


def install_entry(root: Path, target: Target | None, interfaces: Sequence[str],
                  servers: Sequence[str] = ()) -> list[str]:
    """Write config, kernel command line, dracut drop-in, NetworkManager drop-in (where it is
    installed); fix initramfs images and entries.
    Records the MACs of the NAS's servers of the target: `servers`, else those the aoe driver
    uses for it (in the installer the disk is on AoE already), else what the config has.
    Returns what changed (empty: all was already right)."""
    root = Path(root)
    if not root.is_dir():
        raise AoebootError(f"target root {root} is not a directory")
    target = target or rootdev.aoe_root(root)
    if target is None:
        raise AoebootError(f"{root} is not mounted from an AoE disk",
                           hint="name the root partition with --target eX.YpN")
    with lock.held(root):  # kernel-install edits the same files
        return _install_entry(root, target, interfaces, servers)


def _install_entry(root: Path, target: Target, interfaces: Sequence[str],
                   servers: Sequence[str]) -> list[str]:
    changes: list[str] = []
    config = configuration.load(root)
    recorded = tuple(servers) or _serving(root, target) or config.boot.servers
    if set(recorded) == set(config.boot.servers):
        recorded = config.boot.servers  # the driver lists them in the order they answered
    boot = replace(config.boot, target=target,
                   interfaces=tuple(interfaces) or config.boot.interfaces, servers=recorded)
    if recorded != config.boot.servers:
        changes.append(f"recorded {', '.join(recorded)} as the server(s) of {target.disk.name}"
                       + (f" (was {', '.join(config.boot.servers)})" if config.boot.servers
                          else ""))
    config = replace(config, boot=boot)
    # Read every system file we edit before writing any: a broken one stops us here.
    options = host_options(config, root, strict=True)
    assert options is not None  # a target is set
    grubdefault.current(root)
    if not recorded:
        log.warning("cannot tell which NAS serves %s (the aoe driver does not see it): no server "
                    "MAC recorded; `install-entry --server MAC` names it", target.disk.name)
    if configuration.load(root) != config:
        configuration.save(config, root)
        changes.append(f"wrote {paths.CONFIG}")

    cmdline = under(root, paths.KERNEL_CMDLINE)
    if bootfiles.ensure_cmdline(cmdline, options, bootfiles.cmdline_base(root, fallback=None)):
        changes.append(f"set the AoE options in {paths.KERNEL_CMDLINE}")
    if grubdefault.ensure(root, options):
        changes.append(f"set the AoE options in GRUB_CMDLINE_LINUX of {paths.DEFAULT_GRUB}")
    if bootfiles.ensure_dracut_dropin(root):
        changes.append(f"wrote {paths.DRACUT_DROPIN}")
    if config.publish.destination and bootfiles.ensure_publish_timer(root):
        changes.append(f"enabled {paths.PUBLISH_TIMER}")
    if bootfiles.ensure_watch(root):
        changes.append(f"enabled {paths.WATCH_SERVICE}")
    changes += _networkmanager(root, boot.interfaces, target)

    for kver in bootfiles.installed_kernels(root):
        image = initramfs.find(kver, root)
        lacking = initramfs.missing(image) if image else ["initramfs"]
        if lacking:
            out = image or under(root, f"/boot/initramfs-{kver}.img")
            initramfs.build(kver, out, chroot=root)
            changes.append(f"built {out.relative_to(root)} ({', '.join(lacking)} missing)")
    changes += _fix_rescue(root)

    for path in bootfiles.entry_files(root):
        if bootfiles.fix_entry(path, options):
            changes.append(f"set the AoE options in {path.relative_to(root)}")
    return changes


def _networkmanager(root: Path, interfaces: Sequence[str], target: Target) -> list[str]:
    """The NetworkManager drop-in for the NICs of the root disk, where NetworkManager is
    installed: matched by MAC, so a name needs its NIC here to give one."""
    if not nmconf.installed(root):
        return []
    nics, unknown = nmconf.aoe_nics(interfaces, target, root)
    if unknown:
        log.warning("no interface here is called %s: the NetworkManager drop-in cannot name its "
                    "MAC; `install-entry --iface MAC` names it", ", ".join(unknown))
    if not nics:
        log.warning("cannot tell which NIC carries %s: no NetworkManager drop-in written; "
                    "`install-entry --iface IF` names it", target.disk.name)
        return []
    if nmconf.ensure(root, [nic.mac for nic in nics]):
        return [f"wrote {paths.NM_DROPIN} for {', '.join(nic.shown for nic in nics)}"]
    return []


def _serving(root: Path, target: Target) -> tuple[str, ...]:
    """The servers the aoe driver (under `root`: Anaconda bind-mounts /sys) uses for the disk."""
    return driver.servers(target.disk, root) if driver.is_loaded(root) else ()


def _fix_rescue(root: Path) -> list[str]:
    """Fedora's rescue initramfs was built once, before our drop-in: rebuild it with AoE (no
    hostonly, as dracut-rescue builds it) for the kernel it was made for."""
    changes = []
    for rescue in initramfs.rescue_images(root):
        if not initramfs.missing(rescue.image):
            continue
        if rescue.kver is None or rescue.kver not in bootfiles.installed_kernels(root):
            log.warning("cannot rebuild %s: the modules of its kernel %s are gone", rescue.image,
                        rescue.kver or "(unknown)")
            continue
        initramfs.build(rescue.kver, rescue.image, chroot=root, extra_args=["--no-hostonly"])
        changes.append(f"rebuilt the rescue initramfs {rescue.image.relative_to(root)} with AoE")
    return changes
