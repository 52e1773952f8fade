"""`install-entry`: set a freshly installed system (under `root`) up to boot from its AoE disk.

Idempotent: every step compares before it writes, so a second run changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import List, Optional, Sequence

from aoeboot import bls, initramfs, paths, rootdev
from aoeboot import config as configuration
from aoeboot.cmdline import aoe_options
from aoeboot.errors import AoebootError
from aoeboot.fsutil import atomic_write, safe_name, under
from aoeboot.kernel_install import ensure_cmdline, fix_entry
from aoeboot.kver import sort_key
from aoeboot.target import Target

log = logging.getLogger(__name__)

DRACUT_DROPIN_TEXT = (
    "# aoeboot: every initramfs gets the AoE root module (root is on an AoE disk).\n"
    'add_dracutmodules+=" aoe "\n'
)
BOOT_DIRS = ("/boot", "/efi", "/boot/efi")


def installed_kernels(root: Path) -> List[str]:
    """Kernel versions with modules under root/lib/modules, oldest first."""
    modules = under(root, paths.MODULES)
    if not modules.is_dir():
        return []
    versions = [d.name for d in modules.iterdir()
                if d.is_dir() and ((d / "modules.dep").exists() or (d / "vmlinuz").exists())]
    return sorted((safe_name(v, "kernel version") for v in versions), key=sort_key)


def install_entry(root: Path, target: Optional[Target], interfaces: Sequence[str]) -> List[str]:
    """Write config, kernel command line, dracut drop-in; fix initramfs images and entries.
    Returns what changed (empty: all was already right)."""
    root = Path(root)
    if not root.is_dir():
        raise AoebootError(f"target root {root} is not a directory")
    target = target or rootdev.aoe_root(root)
    if target is None:
        raise AoebootError(f"{root} is not mounted from an AoE disk",
                           hint="name the root partition with --target eX.YpN")
    changes: List[str] = []
    config = configuration.load(root)
    boot = replace(config.boot, target=target,
                   interfaces=tuple(interfaces) or config.boot.interfaces)
    if boot != config.boot:
        configuration.save(replace(config, boot=boot), root)
        changes.append(f"wrote {paths.CONFIG}")
    options = aoe_options(target, boot.interfaces, boot.timeout, boot.deadsecs)

    cmdline = under(root, paths.KERNEL_CMDLINE)
    if not cmdline.exists():
        cmdline_text_default(cmdline)
    if ensure_cmdline(cmdline, options):
        changes.append(f"set the AoE options in {paths.KERNEL_CMDLINE}")

    dropin = under(root, paths.DRACUT_DROPIN)
    if not dropin.exists() or dropin.read_text() != DRACUT_DROPIN_TEXT:
        atomic_write(dropin, DRACUT_DROPIN_TEXT)
        changes.append(f"wrote {paths.DRACUT_DROPIN}")

    for kver in installed_kernels(root):
        image = initramfs.find(kver, root)
        lacking = initramfs.missing(image) if image else ["initramfs"]
        if lacking:
            out = image or under(root, f"/boot/initramfs-{kver}.img")
            initramfs.build(kver, out, chroot=root)
            changes.append(f"built {out.relative_to(root)} ({', '.join(lacking)} missing)")

    for boot_dir in BOOT_DIRS:
        for entry in bls.all_entries(under(root, boot_dir)):
            if fix_entry(entry, options):
                changes.append(f"set the AoE options in {entry.relative_to(root)}")
    return changes


def cmdline_text_default(path: Path) -> None:
    # In the installer /proc/cmdline is the installer's own: start the file from nothing but "ro".
    atomic_write(path, "ro\n")
