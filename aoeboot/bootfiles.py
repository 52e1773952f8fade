"""The installed system's boot files that aoeboot keeps right, shared by install-entry, the
kernel-install plugin and status: installed kernels, boot entries, the kernel command line
file, the dracut drop-in and the publish timer (/etc/default/grub: grubdefault.py)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from aoeboot import bls, paths
from aoeboot.cmdline import OWNED_KEYS, Cmdline
from aoeboot.errors import AoebootError
from aoeboot.fsutil import atomic_write, is_safe_name, read_or_empty, read_text, under
from aoeboot.kver import sort_key

BOOT_DIRS = ("/boot", "/efi", "/boot/efi")

# Sourced by dracut as shell: naming a module that is not installed fails every dracut run, so
# once the package is removed the drop-in that install-entry wrote must ask for nothing.
# The module is looked for under any number: dracut-ng renumbers modules (108 asks out-of-tree
# ones for 50-59), and a drop-in that named the old directory would drop AoE from every image.
DRACUT_DROPIN_TEXT = (
    "# aoeboot: every initramfs gets the AoE root module (root is on an AoE disk), as long as\n"
    "# the module is installed: a removed package must not fail every dracut run.\n"
    'for _aoeboot in "${dracutbasedir:-/usr/lib/dracut}"/modules.d/[0-9][0-9]aoe; do\n'
    '    if [ -d "$_aoeboot" ]; then add_dracutmodules+=" aoe "; fi\n'
    "done\n"
    "unset _aoeboot\n"
)


def installed_kernels(root: Path) -> list[str]:
    """Kernel versions with modules under root/lib/modules, oldest first."""
    return module_dirs(root)[0]


def module_dirs(root: Path) -> tuple[list[str], list[str]]:
    """The kernels under root/lib/modules (oldest first), and the names there that look like
    one but cannot be a kernel version (`6.1 old`: a copy someone kept), which are left out."""
    modules = under(root, paths.MODULES)
    if not modules.is_dir():
        return [], []
    versions = [
        d.name
        for d in modules.iterdir()
        if d.is_dir() and ((d / "modules.dep").exists() or (d / "vmlinuz").exists())
    ]
    kernels: list[str] = []
    odd: list[str] = []
    for version in versions:
        (kernels if is_safe_name(version) else odd).append(version)
    return sorted(kernels, key=sort_key), sorted(odd)


def entry_files(root: Path) -> list[Path]:
    """Every Boot Loader Spec entry under root's boot directories, each once."""
    seen: dict[Path, Path] = {}
    for base in [under(root, d) for d in BOOT_DIRS]:
        for path in bls.all_entries(base):
            seen.setdefault(path.resolve(), path)
    return list(seen.values())


def entry_initrds(root: Path, kver: str) -> list[Path]:
    """The initramfs each entry of `kver` under root's boot directories boots, each once: on
    Fedora's grub layout /boot/initramfs-KVER.img, on systemd-boot's the ESP's
    /MACHINE-ID/KVER/initrd. Entries that cannot be read name none."""
    found: dict[Path, Path] = {}
    for base in [under(root, d) for d in BOOT_DIRS]:
        for path in bls.entries_for(base, kver):
            try:
                name = bls.BootEntry.read(path).main_initrd()
            except AoebootError:
                continue
            if name is not None:
                found.setdefault(under(base, name).resolve(), under(base, name))
    return list(found.values())


def entry_kver(path: Path, entry: bls.BootEntry, kernels: Sequence[str]) -> str | None:
    """The kernel an entry boots: its `version`, else the KVER in TOKEN-KVER[+TRIES].conf."""
    version = entry.get("version")
    if version:
        return version
    stem = path.stem.split("+")[0]
    return next((k for k in kernels if stem.endswith("-" + k)), None)


def owned(cmdline: Cmdline) -> tuple[str, ...]:
    return tuple(o for o in cmdline.options if o.partition("=")[0] in OWNED_KEYS)


def carries(cmdline: Cmdline, options: Sequence[str]) -> bool:
    """Has `cmdline` exactly the owned options of `options`, and each of its others (rd.lvm.lv=
    and the like, which the user's own may stand beside)?"""
    return owned(cmdline) == owned(Cmdline(tuple(options))) and all(map(cmdline.has, options))


def fix_entry(path: Path, options: Sequence[str]) -> bool:
    """Give a boot entry exactly our options, keeping every other line; True if it changed."""
    entry = bls.BootEntry.read(path)
    if carries(entry.options, options):
        return False
    atomic_write(path, entry.with_options(entry.options.with_owned(options)).render())
    return True


def cmdline_base(root: Path, fallback: str | None) -> Cmdline:
    """What kernel-install would use without /etc/kernel/cmdline: /usr/lib/kernel/cmdline, else
    `fallback` (the running command line; the installer passes none: its own is no guide)."""
    usr = under(root, paths.USR_KERNEL_CMDLINE)
    if usr.exists():
        return Cmdline.parse(read_text(usr), where=str(usr))
    if fallback is None:
        return Cmdline(("ro",))
    return Cmdline.parse(fallback).without(["BOOT_IMAGE", "initrd"])


def ensure_cmdline(path: Path, options: Sequence[str], base: Cmdline) -> bool:
    """Give the command line file our options, keeping the user's; `base` stands in for a
    missing file. True if it changed."""
    text = read_text(path) if path.exists() else None
    current = base if text is None else Cmdline.parse(text, where=str(path))
    if text is not None and carries(current, options):
        return False
    atomic_write(path, current.with_owned(options).render() + "\n")
    return True


def ensure_dracut_dropin(root: Path) -> bool:
    dropin = under(root, paths.DRACUT_DROPIN)
    if read_or_empty(dropin) == DRACUT_DROPIN_TEXT.strip():
        return False
    atomic_write(dropin, DRACUT_DROPIN_TEXT)
    return True


def unit_link(root: Path, unit: str, wanted_by: str) -> Path:
    return under(root, f"/etc/systemd/system/{wanted_by}.wants") / unit


def timer_link(root: Path) -> Path:
    return unit_link(root, paths.PUBLISH_TIMER, "timers.target")


def watch_link(root: Path) -> Path:
    return unit_link(root, paths.WATCH_SERVICE, "multi-user.target")


def ensure_publish_timer(root: Path) -> bool:
    return ensure_enabled(root, paths.PUBLISH_TIMER, "timers.target")


def ensure_watch(root: Path) -> bool:
    return ensure_enabled(root, paths.WATCH_SERVICE, "multi-user.target")


def ensure_enabled(root: Path, unit: str, wanted_by: str) -> bool:
    """Enable `unit` as `systemctl enable` would (Fedora's presets leave ours disabled); True
    if it was not enabled. Works on a --root that is not running."""
    link = unit_link(root, unit, wanted_by)
    target = paths.UNIT_DIR / unit
    if link.is_symlink() and Path(os.readlink(link)) == target:
        return False
    try:
        link.parent.mkdir(parents=True, exist_ok=True)
        tmp = link.with_name(f".{link.name}.tmp")
        if tmp.is_symlink():
            tmp.unlink()
        tmp.symlink_to(target)
        os.replace(tmp, link)
    except OSError as err:
        raise AoebootError(f"cannot enable {unit} ({link}): {err.strerror}") from None
    return True
