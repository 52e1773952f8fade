"""One filesystem mounted for the length of a with block, and what is mounted under a path."""

from __future__ import annotations

import contextlib
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from aoelab.imagerun import SysImageError, run


@contextlib.contextmanager
def mount(source: str, point: Path, options: str = "", fstype: str = "") -> Iterator[Path]:
    """`source` mounted on `point` (with `options` and `fstype` if given); unmounted after."""
    argv = ["mount"] + (["-t", fstype] if fstype else []) + (["-o", options] if options else [])
    run([*argv, source, str(point)])
    try:
        yield point
    finally:
        _umount(point)


def _umount(point: Path, tries: int = 20) -> None:
    # a process that just left the chroot may hold it for a moment: retry before failing
    for _attempt in range(tries):
        proc = subprocess.run(["umount", str(point)], capture_output=True, text=True)
        if proc.returncode == 0:
            return
        time.sleep(0.25)
    raise SysImageError(f"umount {point} failed: {proc.stderr.strip()}")


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below `path` (from /proc/self/mounts, octal escapes undone)."""
    top = str(path.resolve())
    points = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[1])
        if point == top or point.startswith(top + "/"):
            points.append(point)
    return points
