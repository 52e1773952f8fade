"""What holds a root directory's `/`: the mount in /proc/self/mountinfo, the storage stack
under it, and the AoE disk at its bottom."""

from __future__ import annotations

import os
import re
from pathlib import Path

from aoeboot import stack
from aoeboot.errors import AoebootError
from aoeboot.target import Target

MOUNTINFO = Path("/proc/self/mountinfo")
_OCTAL = re.compile(rb"\\([0-3][0-7]{2})")


def unescape(field: bytes) -> str:
    """A mountinfo field as a path string. The kernel writes a path's bytes as they are, except
    blank, tab, newline and backslash, written as \\ooo; undo only that, on bytes, and decode
    as the file system's names are (os.fsdecode), so any name compares equal to its Path."""
    return os.fsdecode(_OCTAL.sub(lambda m: bytes([int(m.group(1), 8)]), field))


# File systems with no block device under them that the initramfs could assemble from AoE.
UNHANDLED_FSTYPES = ("zfs", "bcachefs", "overlay")


def mount_of(mount_point: Path, mountinfo: Path = MOUNTINFO) -> tuple[str, str] | None:
    """The source and file system type of the last mount at `mount_point` (the visible one)."""
    found = None
    for line in mountinfo.read_bytes().split(b"\n"):
        left, _, right = line.partition(b" - ")
        fields = left.split(b" ")
        if len(fields) >= 5 and Path(unescape(fields[4])) == mount_point:
            parts = right.split(b" ")
            found = (unescape(parts[1]), unescape(parts[0])) if len(parts) >= 2 else None
    return found


def mount_source(mount_point: Path, mountinfo: Path = MOUNTINFO) -> str | None:
    """The source device of the last mount at `mount_point` (the one that is visible)."""
    found = mount_of(mount_point, mountinfo)
    return None if found is None else found[0]


def root_stack(root: Path = Path("/"), mountinfo: Path = MOUNTINFO) -> stack.Stack | None:
    """The storage stack under the file system mounted at `root` (its /sys and /dev: the
    installer bind-mounts them); None when `root` is no mount of a block device seen here."""
    found = mount_of(Path(root).resolve(), mountinfo)
    if found is None:
        return None
    source, fstype = found
    if not source.startswith("/dev/"):
        return None
    name = stack.block_name(source, root)
    if name is not None:
        found_stack = stack.walk(name, root)
        if found_stack.disks and found_stack.unhandled:
            raise AoebootError(f"/ of {root} is on AoE, but {found_stack.unhandled[0]}")
        if found_stack.disks and found_stack.others:
            raise AoebootError(
                f"/ of {root} is {found_stack.describe()}: both on AoE and on "
                f"{', '.join(found_stack.others)}; a box without its local "
                "disk would not boot"
            )
        return found_stack
    try:  # no sysfs to read (a test's tree): an etherd path still says where it is
        target = Target.parse(source) if source.startswith("/dev/etherd/") else None
    except AoebootError:
        target = None
    return None if target is None else stack.Stack(f"etherd!{target.name}", (), (target,))


def check_handled(root: Path, mountinfo: Path = MOUNTINFO) -> None:
    """An error for a root file system with no block device the initramfs could assemble."""
    found = mount_of(Path(root).resolve(), mountinfo)
    if found is not None and found[1] in UNHANDLED_FSTYPES:
        raise AoebootError(
            f"{root} is {found[1]} ({found[0]}): aoeboot boots only a file system "
            "on a block device (AoE, under LVM, LUKS or md)"
        )


def aoe_root(root: Path = Path("/"), mountinfo: Path = MOUNTINFO) -> Target | None:
    """The AoE disk (or partition) under the file system mounted at `root`, through any LVM,
    LUKS or md between them; None when it is not on AoE. The first, where there are several."""
    found = root_stack(root, mountinfo)
    return found.disks[0] if found is not None and found.on_aoe else None
