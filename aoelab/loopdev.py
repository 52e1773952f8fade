"""A disk image on a loop device, with a device node for each of its partitions.

A kernel without a GPT partition parser (CONFIG_EFI_PARTITION unset) adds no partition nodes
of its own: partx then reads the table and adds them, and they are deleted before the loop
device is detached, since they would outlive it.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from aoelab.imagerun import SysImageError, run


@contextlib.contextmanager
def attached(image: Path, read_only: bool = False) -> Iterator[str]:
    """`image` on a loop device with its partitions (/dev/loopNpM); yields /dev/loopN."""
    argv = ["losetup", "--find", "--show", "--partscan"] + (["--read-only"] if read_only else [])
    loop = run([*argv, str(image)]).stdout.strip()
    try:
        _wait_for_partitions(loop)
        yield loop
    finally:
        # partitions partx added can outlive the loop device: remove them first
        subprocess.run(["partx", "--delete", loop], capture_output=True)
        run(["losetup", "--detach", loop])


def _wait_for_partitions(loop: str) -> None:
    """The kernel adds the partition nodes a moment after losetup returns. A kernel built without
    a GPT parser (no CONFIG_EFI_PARTITION) adds none: partx reads the table itself and adds them
    (`attached` deletes them again: they outlive the loop device)."""
    if _partitions_appear(loop, timeout=0.2):
        return
    run(["partx", "--add", loop])
    if not _partitions_appear(loop, timeout=10.0):
        raise SysImageError(f"{loop}: no partition device nodes, even after partx --add")


def _partitions_appear(loop: str, timeout: float) -> bool:
    sysfs = Path("/sys/class/block") / Path(loop).name
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        parts = [p.name for p in sysfs.glob(f"{sysfs.name}p*")]
        if parts and all(Path("/dev", name).exists() for name in parts):
            return True
        time.sleep(0.05)
    return False
