"""Read-only checks of every filesystem on an unmounted system disk, keyed by where the system
mounts it."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aoelab.disklayout import Layout, layout_of
from aoelab.loopdev import attached


@dataclass(frozen=True)
class FsckResult:
    """A read-only check of one filesystem of the system disk."""

    partition: int
    fstype: str
    argv: Sequence[str]
    returncode: int
    output: str

    @property
    def clean(self) -> bool:
        return self.returncode == 0


def _fsck_argv(fstype: str, device: str) -> list[str]:
    return {
        "btrfs": ["btrfs", "check", "--readonly", device],
        "ext4": ["e2fsck", "-n", "-f", device],
        "vfat": ["fsck.vfat", "-n", device],
        "xfs": ["xfs_repair", "-n", device],
    }[fstype]


def fsck(image: Path, layout: Layout | None = None) -> dict[str, FsckResult]:
    """Read-only checks of every filesystem on the (unmounted) system disk `image`, keyed by where
    the system mounts it: '/' (WORKSTATION: the btrfs volume, /home included; SERVER: the xfs in
    the LV), '/boot', '/boot/efi'. `layout`: the disk's own (layout_of) unless given."""
    layout = layout or layout_of(image)
    results: dict[str, FsckResult] = {}
    with attached(image, read_only=True) as loop, layout.devices(loop, True) as devices:
        for mount in layout.mounts:
            if any(r.partition == mount.partition for r in results.values()):
                continue  # /home: the same btrfs volume as /
            argv = _fsck_argv(mount.fstype, devices[mount.partition])
            proc = subprocess.run(argv, capture_output=True, text=True)
            results[mount.mountpoint] = FsckResult(
                mount.partition, mount.fstype, argv, proc.returncode, proc.stdout + proc.stderr
            )
    return results
