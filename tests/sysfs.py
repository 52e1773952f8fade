"""A sysfs (and /dev) as a running box shows its block devices, under a test's root: what
aoeboot.stack walks. Stands in for device-mapper and md, which this machine's kernel lacks;
the real ones are walked in the VM (tests/e2e/test_server_system.py)."""

from __future__ import annotations

import os
from pathlib import Path

LVM_UUID = "LVM-" + "a" * 32 + "b" * 32  # the VG's UUID then the LV's, without dashes
LUKS_HEX = "0123456789abcdef0123456789abcdef"
LUKS_UUID = "01234567-89ab-cdef-0123-456789abcdef"


def block(
    root: Path,
    name: str,
    *,
    under: str | None = None,
    dm: tuple[str, str] | None = None,
    md: str | None = None,
    md_uuid: str | None = None,
    slaves: tuple[str, ...] = (),
    number: str = "253:0",
    dev: str | None = None,
) -> Path:
    """Block device `name` (sysfs spelling: etherd!e11.0p3) as sysfs lists it: a directory under
    /sys/devices (inside its disk's, for a partition `under` it), /sys/class/block/NAME and
    /sys/dev/block/MAJ:MIN linking there; `dm` (name, uuid) or `md` (array_state) with `slaves`
    (names made before); and /dev/DEV, /dev/mapper/DMNAME for a dm device."""
    devices = root / "sys/devices/virtual/block"
    directory = (root / "sys/class/block" / under).resolve() / name if under else devices / name
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "dev").write_text(number + "\n")
    if under:
        (directory / "partition").write_text("3\n")
    if dm:
        (directory / "dm").mkdir()
        (directory / "dm/name").write_text(dm[0] + "\n")
        (directory / "dm/uuid").write_text(dm[1] + "\n")
    if md:
        (directory / "md").mkdir()
        (directory / "md/array_state").write_text(md + "\n")
        if md_uuid:
            data = root / "run/udev/data"
            data.mkdir(parents=True, exist_ok=True)
            (data / f"b{number}").write_text(f"E:MD_UUID={md_uuid}\n")
    if slaves:
        (directory / "slaves").mkdir()
        for slave in slaves:
            (directory / "slaves" / slave).symlink_to(
                os.path.relpath((root / "sys/class/block" / slave).resolve(), directory / "slaves")
            )
    for link in (root / "sys/class/block" / name, root / "sys/dev/block" / number):
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(directory, link.parent))
    node = root / "dev" / (dev or name.replace("!", "/"))
    node.parent.mkdir(parents=True, exist_ok=True)
    node.write_text("")
    if dm:
        (root / "dev/mapper").mkdir(parents=True, exist_ok=True)
        (root / "dev/mapper" / dm[0]).symlink_to(f"../{node.name}")
    return directory


def aoe_partition(root: Path, disk: str = "e11.0", part: int = 3, first_minor: int = 0) -> str:
    """An AoE disk (its minors from `first_minor`) and its partition; returns the partition's
    sysfs name."""
    if not (root / "sys/class/block" / f"etherd!{disk}").exists():
        block(root, f"etherd!{disk}", number=f"152:{first_minor}")
    name = f"etherd!{disk}p{part}"
    block(root, name, under=f"etherd!{disk}", number=f"152:{first_minor + part}")
    return name


def lvm_on(
    root: Path,
    slave: str,
    dm_name: str = "fedora-root",
    device: str = "dm-0",
    uuid: str = LVM_UUID,
    number: str = "253:0",
) -> str:
    block(root, device, dm=(dm_name, uuid), slaves=(slave,), number=number)
    return device


def luks_on(root: Path, slave: str, device: str = "dm-1", number: str = "253:1") -> str:
    block(
        root,
        device,
        dm=(f"luks-{LUKS_UUID}", f"CRYPT-LUKS2-{LUKS_HEX}-luks-{LUKS_UUID}"),
        slaves=(slave,),
        number=number,
    )
    return device


def mountinfo(root: Path, source: str, fstype: str) -> Path:
    """/proc/self/mountinfo under `root` with `root` mounted from `source`."""
    path = root / "proc/self/mountinfo"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"23 1 253:0 / {root} rw,relatime shared:1 - {fstype} {source} rw\n")
    return path
