"""A fake installed system under a test's temporary directory: the files aoeboot reads and edits
on a real one, each at the path it has there, so that a test names only what its system holds.
The `sysroot` fixture (tests/conftest.py) makes one; a test adds what is its own."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path


def write(root: Path, path: str, text: str) -> Path:
    """`text` into root/path, its directories made."""
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    return target


def make_sysroot(
    root: Path,
    *,
    kver: str | None = None,
    modules_dep: str = "",
    entries: Mapping[str, str] | None = None,
    initramfs: Path | None = None,
    cmdline: str | None = None,
    config: str | None = None,
    fstab: str | None = None,
    grub: str | None = None,
    nics: Mapping[str, str] | None = None,
    files: Mapping[str, str] | None = None,
) -> Path:
    """Make the system at `root`, which must not exist yet (two there would mix): a kernel
    `kver`, its /lib/modules/KVER/modules.dep holding `modules_dep` and `initramfs` copied to
    /boot/initramfs-KVER.img; boot `entries` (file name: text) in /boot/loader/entries;
    /etc/kernel/cmdline, /etc/aoeboot/aoeboot.conf, /etc/fstab and /etc/default/grub; `nics`
    (name: MAC) in /sys/class/net; and any other `files` (path: text)."""
    root.mkdir(parents=True)
    if kver is not None:
        write(root, f"lib/modules/{kver}/modules.dep", modules_dep)
    if initramfs is not None:
        assert kver is not None, "an initramfs is some kernel's"
        (root / "boot").mkdir(exist_ok=True)
        shutil.copy(initramfs, root / "boot" / f"initramfs-{kver}.img")
    for name, entry in (entries or {}).items():
        write(root, f"boot/loader/entries/{name}", entry)
    for path, text in (
        ("etc/kernel/cmdline", cmdline),
        ("etc/aoeboot/aoeboot.conf", config),
        ("etc/fstab", fstab),
        ("etc/default/grub", grub),
    ):
        if text is not None:
            write(root, path, text)
    for name, mac in (nics or {}).items():
        write(root, f"sys/class/net/{name}/address", mac + "\n")
    for path, text in (files or {}).items():
        write(root, path, text)
    return root
