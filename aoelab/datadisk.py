"""The data disk beside the system disk (served later as e11.1): GPT with one ext4 partition,
mounted by the installed system at /srv/data through an fstab line of its own."""

from __future__ import annotations

from pathlib import Path

from aoelab.disklayout import LINUX_TYPE
from aoelab.imagerun import run

# The data volume (served later as e11.1).
DATA_UUID = "a0e0b007-0000-4000-8000-00000000da7a"
DATA_PARTUUID = "A0E0B007-0000-4000-8000-0000000000DA"
DATA_LABEL = "aoedata"
DATA_MOUNTPOINT = "/srv/data"


def data_fstab_line(mountpoint: str = DATA_MOUNTPOINT, uuid: str = DATA_UUID) -> str:
    """fstab line for the data volume. `_netdev`: the disk comes over the network, so systemd
    orders it after the network and unmounts it before the network goes down at shutdown.
    `nofail`: a NAS that does not export it (or a missing by-uuid link for etherd disks) leaves
    /srv/data unmounted instead of holding the boot 90 s and dropping into emergency mode; tests
    check the mount itself."""
    return f"UUID={uuid} {mountpoint} ext4 defaults,_netdev,nofail 0 2"


def make_data_disk(
    image: Path, size: int = 256 << 20, uuid: str = DATA_UUID, label: str = DATA_LABEL
) -> Path:
    """A second disk: GPT with one ext4 partition (fixed UUID and label) from 1 MiB to the end."""
    with open(image, "wb") as handle:
        handle.truncate(size)
    run(
        ["sfdisk", "-q", str(image)],
        input=f"label: gpt\nstart=2048, type={LINUX_TYPE}, uuid={DATA_PARTUUID}\n",
    )
    start = 2048 * 512
    end = size - (1 << 20)  # the backup GPT lives in the last sectors
    run(
        [
            "mkfs.ext4",
            "-q",
            "-F",
            "-U",
            uuid,
            "-L",
            label,
            "-E",
            f"offset={start}",
            str(image),
            f"{(end - start) // 1024}k",
        ]
    )
    return image
