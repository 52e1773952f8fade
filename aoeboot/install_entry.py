"""`install-entry`: set a freshly installed system (under `root`) up to boot from its AoE disk.

Idempotent: every step compares before it writes, so a second run changes nothing. Everything
is derived from the installed system (its fstab, its /usr/lib/kernel/cmdline), never from the
installer's own boot.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from aoeboot import bootfiles, driver, grubdefault, initramfs, lock, nmconf, paths, rootdev
from aoeboot import config as configuration
from aoeboot.bls import BootEntry
from aoeboot.cmdline import COMMAND_LINE_SIZE, OWNED_KEYS, Cmdline
from aoeboot.errors import AoebootError
from aoeboot.fstab import root_line
from aoeboot.fsutil import read_text, under
from aoeboot.hostopts import host_options, initramfs_options_from
from aoeboot.ipxe import check_options
from aoeboot.stack import Stack
from aoeboot.target import Target

log = logging.getLogger(__name__)


def install_entry(
    root: Path, target: Target | None, interfaces: Sequence[str], servers: Sequence[str] = ()
) -> list[str]:
    """Write config, kernel command line, dracut drop-in, NetworkManager drop-in (where it is
    installed); fix initramfs images and entries.
    Records the MACs of the NAS's servers of the target: `servers`, else those the aoe driver
    uses for it (in the installer the disk is on AoE already), else what the config has.
    Returns what changed (empty: all was already right)."""
    root = Path(root)
    if not root.is_dir():
        raise AoebootError(f"root {root} is not a directory")
    config = configuration.load(root)
    rootdev.check_handled(root)
    live = rootdev.root_stack(root)
    # Given, else what the last run recorded, else the disk under / (the installer).
    named = (
        "--target"
        if target
        else f"the target in {paths.CONFIG}"
        if config.boot.target
        else f"the mount at {root}"
    )
    target = target or config.boot.target or _disk_under(root, live)
    if target is None:
        raise AoebootError(
            f"{root} is not mounted from an AoE disk",
            hint="name the root partition with --target eX.YpN",
        )
    _check_target(root, target, named, live)
    with lock.held(root):  # kernel-install edits the same files
        return _install_entry(root, target, interfaces, servers)


def _install_entry(
    root: Path, target: Target, interfaces: Sequence[str], servers: Sequence[str]
) -> list[str]:
    config = configuration.load(root)  # again, under the lock: another run may have changed it
    changes: list[str] = []
    recorded = tuple(servers) or _serving(root, target) or config.boot.servers
    if set(recorded) == set(config.boot.servers):
        recorded = config.boot.servers  # the driver lists them in the order they answered
    boot = replace(
        config.boot,
        target=target,
        interfaces=tuple(interfaces) or config.boot.interfaces,
        servers=recorded,
    )
    if recorded != config.boot.servers:
        changes.append(
            f"recorded {', '.join(recorded)} as the server(s) of {target.disk.name}"
            + (f" (was {', '.join(config.boot.servers)})" if config.boot.servers else "")
        )
    config = replace(config, boot=boot)
    # Read every system file we edit before writing any: a broken one stops us here.
    options = host_options(config, root, strict=True)
    assert options is not None  # a target is set
    _read_everything(root, options, publishing=bool(config.publish.destination))
    if not recorded:
        log.warning(
            "cannot tell which NAS serves %s (the aoe driver does not see it): no server "
            "MAC recorded; `install-entry --server MAC` names it",
            target.disk.name,
        )
    if configuration.load(root) != config:
        configuration.save(config, root)
        changes.append(f"wrote {paths.CONFIG}")

    cmdline = under(root, paths.KERNEL_CMDLINE)
    if bootfiles.ensure_cmdline(cmdline, options, _cmdline_base(root)):
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

    baked = initramfs_options_from(options, config)
    for kver in bootfiles.installed_kernels(root):
        # what each entry boots (systemd-boot's is on the ESP), not only /boot's usual name
        for image in initramfs.booted(kver, root) or [under(root, f"/boot/initramfs-{kver}.img")]:
            changes += _ensure_image(root, kver, image, baked)
    changes += _fix_rescue(root)

    for path in bootfiles.entry_files(root):
        if bootfiles.fix_entry(path, options):
            changes.append(f"set the AoE options in {path.relative_to(root)}")
    return changes


def _ensure_image(root: Path, kver: str, image: Path, baked: Sequence[str]) -> list[str]:
    """Build `image` if it is missing or lacks AoE; say so if it does not carry `baked`."""
    lacking = initramfs.missing(image) if image.is_file() else ["initramfs"]
    if lacking:
        initramfs.build(kver, image, chroot=root, baked=baked)
        return [f"built {image.relative_to(root)} ({', '.join(lacking)} missing)"]
    initramfs.warn_unless_carried(image, baked, image.relative_to(root))
    return []


def _disk_under(root: Path, live: Stack | None) -> Target | None:
    """The one AoE disk under the mount at `root`; an error where there are several."""
    if live is None or not live.on_aoe:
        return None
    if len(live.disks) > 1:
        names = ", ".join(d.name for d in live.disks)
        raise AoebootError(
            f"/ is {live.describe()}: on {len(live.disks)} AoE disks",
            hint=f"name the one to boot from with --target (one of {names})",
        )
    return live.disks[0]


def _check_target(root: Path, target: Target, named: str, live: Stack | None) -> None:
    """The target must be where the installed system has its /: the partition its fstab
    mounts (where that names an AoE device) and one under the mount at `root`; a whole disk
    only where it has no partitions."""
    if live is not None and live.on_aoe and target not in live.disks:
        raise AoebootError(
            f"{named} is {target.name}, which is not under /: / is {live.describe()}",
            hint=f"--target {live.disks[0].name}",
        )
    found = _fstab_root(root)
    if found is not None and found != target:
        raise AoebootError(
            f"{named} is {target.name}, but {paths.FSTAB} has / on {found.name}",
            hint=f"--target {found.name}",
        )
    if target.partition is None:
        seen = next((t for t in driver.list_targets(root) if t.target == target), None)
        if seen is not None and seen.partitions:
            parts = ", ".join(p.name for p in seen.partitions)
            raise AoebootError(
                f"{named} is the whole disk {target.name}, which has partitions "
                f"({parts}): / is on one of them",
                hint=f"--target {target.name}pN",
            )


def _fstab_root(root: Path) -> Target | None:
    """The AoE partition root's fstab mounts / from, where it tells (a /dev/etherd path, or
    a UUID=/LABEL= whose link the installer's /dev has); None where it does not."""
    line = root_line(root)
    if line is None:
        return None
    device = Path(line.device)
    if line.link is not None:
        device = Path(os.path.realpath(under(root, line.link)))  # ../../etherd/e11.0p1
    if device.parent.name != "etherd":
        return None
    try:
        return Target.parse(device.name)
    except AoebootError:
        return None


def _read_everything(root: Path, options: Sequence[str], publishing: bool) -> None:
    """Read every file install-entry edits, so that one it cannot read or parse stops it before
    it has written anything: /etc/default/grub, the command line files, every boot entry; and
    each must still fit the kernel's command line with our options (and, `publishing`, the
    kernel line of the NAS's iPXE script, which gets /etc/kernel/cmdline)."""
    grub = grubdefault.current(root)
    _fits(grub or Cmdline(), options, str(paths.DEFAULT_GRUB))
    cmdline = under(root, paths.KERNEL_CMDLINE)
    base = _cmdline_base(root)
    if cmdline.exists():
        base = Cmdline.parse(read_text(cmdline), where=str(cmdline))
    _fits(base, options, str(paths.KERNEL_CMDLINE))
    if publishing:
        check_options(f"the options of {paths.KERNEL_CMDLINE}", base.with_owned(options).render())
    for path in bootfiles.entry_files(root):
        _fits(BootEntry.read(path).options, options, str(path.relative_to(root)))
    odd = bootfiles.module_dirs(root)[1]
    if odd:
        log.warning(
            "%s holds %s, which cannot be a kernel version: left alone",
            paths.MODULES,
            ", ".join(map(repr, odd)),
        )


def _cmdline_base(root: Path) -> Cmdline:
    """What a new /etc/kernel/cmdline starts from: /usr/lib/kernel/cmdline, else, as
    grub2-mkconfig would write it, "ro" and GRUB_CMDLINE_LINUX (rd.lvm.lv=fedora/root, ...)."""
    base = bootfiles.cmdline_base(root, fallback=None)
    grub = grubdefault.current(root)
    if grub is None or under(root, paths.USR_KERNEL_CMDLINE).exists():
        return base
    return Cmdline(
        base.options + tuple(o for o in grub.without(OWNED_KEYS).options if not base.has(o))
    )


def _fits(current: Cmdline, options: Sequence[str], where: str) -> None:
    """The kernel keeps only the first COMMAND_LINE_SIZE - 1 bytes, and ours come last."""
    size = len(current.with_owned(options).render().encode())
    if size >= COMMAND_LINE_SIZE:
        raise AoebootError(
            f"{where}: the command line with the AoE options would be {size} "
            f"bytes; the kernel keeps only {COMMAND_LINE_SIZE - 1} and would cut "
            "root= off",
            hint="remove options you do not need",
        )


def _networkmanager(root: Path, interfaces: Sequence[str], target: Target) -> list[str]:
    """The NetworkManager drop-in for the NICs of the root disk, where NetworkManager is
    installed: matched by MAC, so a name needs its NIC here to give one."""
    if not nmconf.installed(root):
        return []
    nics, unknown = nmconf.aoe_nics(interfaces, target, root)
    if unknown:
        log.warning(
            "no interface here is called %s: the NetworkManager drop-in cannot name its "
            "MAC; `install-entry --iface MAC` names it",
            ", ".join(unknown),
        )
    if not nics:
        log.warning(
            "cannot tell which NIC carries %s: no NetworkManager drop-in written; "
            "`install-entry --iface IF` names it",
            target.disk.name,
        )
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
            log.warning(
                "cannot rebuild %s: the modules of its kernel %s are gone",
                rescue.image,
                rescue.kver or "(unknown)",
            )
            continue
        initramfs.build(rescue.kver, rescue.image, chroot=root, extra_args=["--no-hostonly"])
        changes.append(f"rebuilt the rescue initramfs {rescue.image.relative_to(root)} with AoE")
    return changes
