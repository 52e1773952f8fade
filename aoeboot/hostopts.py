"""The kernel options this host needs to boot from AoE: from the config, else from where / is,
with the root mount options its fstab gives."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from aoeboot import fstab, paths, rootdev, stack
from aoeboot.cmdline import AOE_WANTED, aoe_options
from aoeboot.config import BootConfig, Config
from aoeboot.errors import AoebootError

log = logging.getLogger(__name__)
# In the initramfs only: the NAS's server MACs install-entry recorded, which the AoE report
# compares with those that answered.
SERVERS_OPTION = "rd.aoe.server"
# aoe_deadsecs where the NAS serves the target from more than one port. The driver moves frames
# off a server MAC that stopped answering (it "scorns" it after 10 s) only when deadsecs is not
# 0; and it fails the disk only once one frame has waited deadsecs, which this never reaches.
PORTS_DEADSECS = 2**31 - 1


def deadsecs(boot: BootConfig) -> int | None:
    """rd.aoe.deadsecs for `boot`: the configured value, else PORTS_DEADSECS where more than one
    server MAC is recorded, else none (the dracut module's 0: wait for the NAS for ever)."""
    if boot.deadsecs is not None:
        return boot.deadsecs
    return PORTS_DEADSECS if len(boot.servers) > 1 else None


def host_options(
    config: Config, root: Path = Path("/"), strict: bool = False
) -> tuple[str, ...] | None:
    """root=, rootflags=, rd.aoe.* for this host; None when it neither is configured for nor
    runs from AoE. An fstab without a / line is an error when `strict` (install-entry: the
    installer always writes one); otherwise root's mount options are left out, so that a
    running system whose root is not in fstab still gets its kernels installed."""
    target = config.boot.target or rootdev.aoe_root(root)
    if target is None:
        return None
    try:
        root_mount = fstab.root_options(root)
    except AoebootError as err:
        if strict:
            raise
        log.info("%s: root is mounted with the kernel's defaults", err)
        root_mount = ()
    boot = config.boot
    return aoe_options(
        target,
        boot.interfaces,
        boot.timeout,
        deadsecs(boot),
        root_mount,
        stacked_root(root, rootdev.root_stack(root)),
    )


def stacked_root(root: Path, live: stack.Stack | None) -> tuple[str, tuple[str, ...]] | None:
    """root= and the options that assemble the storage under `root`'s / where that is not a
    file system straight on an AoE disk: fstab's device for / (/dev/mapper/..., UUID=...) and
    rd.lvm.lv=, rd.luks.uuid=, rd.md.uuid=. From the stack as sysfs shows it (`live`, from
    rootdev.root_stack), else (a system prepared where its stack is not assembled) from what
    fstab names. None: root= is the disk."""
    try:
        line = fstab.root_line(root)
    except AoebootError:
        line = None  # no / line: host_options has said so
    if live is not None and live.on_aoe:
        if not live.layers:
            return None
        if line is None:
            raise AoebootError(
                f"/ is {live.describe()}, and {paths.FSTAB} under {root} has no "
                "line for / to name it on the kernel command line"
            )
        return line.device, live.options
    if line is None:
        return None
    assembly = declared_assembly(line.device)
    return None if assembly is None else (line.device, assembly)


def declared_assembly(device: str) -> tuple[str, ...] | None:
    """What assembles the device fstab names for / where its name says: /dev/mapper/VG-LV is
    LVM (Anaconda writes that), /dev/mapper/luks-UUID a LUKS container. None for a name that
    says nothing of a stack (UUID=, /dev/etherd/...)."""
    if device.startswith("/dev/md"):
        raise AoebootError(
            f"/ is on {device}, an md array not assembled here: its UUID cannot be read",
            hint="run install-entry where the array is assembled",
        )
    name = device.removeprefix("/dev/mapper/")
    if name == device or not name or "/" in name:
        return None
    if name.startswith("luks-"):
        return (f"rd.luks.uuid={name}",)
    return (f"rd.lvm.lv={stack.lvm_name(name)}",)


def initramfs_options(config: Config, root: Path = Path("/")) -> tuple[str, ...] | None:
    """What the dracut module bakes into /etc/cmdline.d: the host options, AOE_WANTED and the
    recorded servers. The real command line still wins wherever it says otherwise."""
    options = host_options(config, root)
    return None if options is None else initramfs_options_from(options, config)


def initramfs_options_from(options: Sequence[str], config: Config) -> tuple[str, ...]:
    """initramfs_options from the host options already worked out."""
    servers = config.boot.servers
    wanted = () if AOE_WANTED in options else (AOE_WANTED,)
    return (*options, *wanted, *([f"{SERVERS_OPTION}={','.join(servers)}"] if servers else []))
