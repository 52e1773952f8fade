"""Which AoE device holds a root directory's `/`, from /proc/self/mountinfo."""

from __future__ import annotations

import os
import re
from pathlib import Path

from aoeboot.errors import AoebootError
from aoeboot.target import Target

MOUNTINFO = Path("/proc/self/mountinfo")
_OCTAL = re.compile(rb"\\([0-3][0-7]{2})")


def unescape(field: bytes) -> str:
    """A mountinfo field as a path string. The kernel writes a path's bytes as they are, except
    blank, tab, newline and backslash, written as \\ooo; undo only that, on bytes, and decode
    as the file system's names are (os.fsdecode), so any name compares equal to its Path."""
    return os.fsdecode(_OCTAL.sub(lambda m: bytes([int(m.group(1), 8)]), field))


def mount_source(mount_point: Path, mountinfo: Path = MOUNTINFO) -> str | None:
    """The source device of the last mount at `mount_point` (the one that is visible)."""
    source = None
    for line in mountinfo.read_bytes().split(b"\n"):
        left, _, right = line.partition(b" - ")
        fields = left.split(b" ")
        if len(fields) >= 5 and Path(unescape(fields[4])) == mount_point:
            parts = right.split(b" ")
            source = unescape(parts[1]) if len(parts) >= 2 else None
    return source


def aoe_root(root: Path = Path("/"), mountinfo: Path = MOUNTINFO) -> Target | None:
    """The AoE target mounted at `root`, or None when `root` is not on an etherd device."""
    source = mount_source(Path(root).resolve(), mountinfo)
    if source is None or not source.startswith("/dev/etherd/"):
        return None
    try:
        return Target.parse(source)
    except AoebootError:
        return None
