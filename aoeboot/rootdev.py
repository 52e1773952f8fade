"""Which AoE device holds a root directory's `/`, from /proc/self/mountinfo."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from aoeboot.errors import AoebootError
from aoeboot.target import Target

MOUNTINFO = Path("/proc/self/mountinfo")


def _unescape(field: str) -> str:
    # mountinfo escapes blanks, tabs, newlines and backslashes as \ooo
    return bytes(field, "utf-8").decode("unicode_escape")


def mount_source(mount_point: Path, mountinfo: Path = MOUNTINFO) -> Optional[str]:
    """The source device of the last mount at `mount_point` (the one that is visible)."""
    source = None
    for line in mountinfo.read_text().splitlines():
        left, _, right = line.partition(" - ")
        fields = left.split()
        if len(fields) >= 5 and Path(_unescape(fields[4])) == mount_point:
            parts = right.split()
            source = parts[1] if len(parts) >= 2 else None
    return source


def aoe_root(root: Path = Path("/"), mountinfo: Path = MOUNTINFO) -> Optional[Target]:
    """The AoE target mounted at `root`, or None when `root` is not on an etherd device."""
    source = mount_source(Path(root).resolve(), mountinfo)
    if source is None or not source.startswith("/dev/etherd/"):
        return None
    try:
        return Target.parse(source)
    except AoebootError:
        return None
