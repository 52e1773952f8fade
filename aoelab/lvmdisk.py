"""An LVM volume group on one partition of a disk image, as Fedora Server's installer makes it
(one PV, VG `fedora`, one linear LV `root` over all of it), written and reached without
device-mapper: the lab's host kernel has none.

    create(pv, volume)                     # pvcreate, vgcreate, lvcreate: metadata only
    with attached_lv(pv, volume) as dev:   # the LV's extents on a loop device
        run(["mkfs.xfs", dev])

The host's lvm runs with activation off and sees only `pv` (`--devices`), so another image's VG
of the same name on another loop device stays out of it; no backup or archive goes to the
host's /etc/lvm. The metadata is ordinary LVM2 text metadata, with no system ID and the VG
neither exported nor partial (what the box's lvm, with device-mapper, needs to activate it as
any other; not tried on this host). The PV, VG and LV UUIDs are fixed: lvm sets a PV's UUID
when asked (`--uuid`), the VG's and LV's only through a metadata restore, so the metadata is
backed up, the two ids rewritten and restored.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from aoelab.imagerun import SysImageError, run

# devices: no udev database (partx-added partitions have none), no hints file in /run/lvm.
# global: no device-mapper. backup: nothing written to the host's /etc/lvm.
CONFIG = (
    'devices { obtain_device_list_from_udev = 0 external_device_info_source = "none" '
    'hints = "none" } global { activation = 0 } backup { backup = 0 archive = 0 }'
)
LVM_ENV = {**os.environ, "LVM_SUPPRESS_FD_WARNINGS": "1"}  # pytest's open files are no news
EXTENT_BYTES = 4 << 20  # lvm's default, as Anaconda leaves it


@dataclass(frozen=True)
class Volume:
    """One LV filling its VG, which has one PV; UUIDs as lvm writes them (6-4-4-4-4-4-6)."""

    vg: str
    lv: str
    pv_uuid: str
    vg_uuid: str
    lv_uuid: str

    @property
    def mapper(self) -> str:
        """The LV's /dev/mapper name (lvm doubles a dash inside either name)."""
        return f"/dev/mapper/{self.vg.replace('-', '--')}-{self.lv.replace('-', '--')}"


@dataclass(frozen=True)
class Extent:
    """Where a linear LV's data lies inside its PV, in bytes."""

    offset: int
    size: int


def lvm(command: str, pv: str, *args: str) -> subprocess.CompletedProcess[str]:
    """An lvm `command` (pvcreate, vgs, ...) that sees only the device `pv`, without
    device-mapper or writing to the host's /etc/lvm."""
    return run([command, "--devices", pv, "--config", CONFIG, *args], env=LVM_ENV)


def report(command: str, pv: str, fields: str, *args: str) -> list[dict[str, str]]:
    """The rows of `command` (pvs, vgs, lvs) for `pv`: `fields` (-o), sizes in bytes."""
    out = lvm(
        command, pv, "--reportformat", "json", "--units", "b", "--nosuffix", "-o", fields, *args
    ).stdout
    rows: list[dict[str, str]] = []
    for section in json.loads(out)["report"]:
        for part in section.values():
            rows.extend(part)
    return rows


def create(pv: str, volume: Volume) -> None:
    """Write `volume` onto the partition `pv`: the PV (fixed UUID), the VG with it, the LV over
    all its extents (linear, not zeroed: there is no device to zero through), then the VG's and
    LV's fixed UUIDs."""
    lvm("pvcreate", pv, "--yes", "--uuid", volume.pv_uuid, "--norestorefile", pv)
    lvm("vgcreate", pv, "--physicalextentsize", f"{EXTENT_BYTES >> 20}m", volume.vg, pv)
    lvm("lvcreate", pv, "--yes", "-an", "-Zn", "-l", "100%FREE", "-n", volume.lv, volume.vg)
    _fix_uuids(pv, volume)


def _fix_uuids(pv: str, volume: Volume) -> None:
    with tempfile.TemporaryDirectory(prefix="lvm-meta.") as tmp:
        meta = Path(tmp) / f"{volume.vg}.vg"
        lvm("vgcfgbackup", pv, "-f", str(meta), volume.vg)
        text = meta.read_text()
        # the first `id` after the VG's and after the LV's opening line is its own
        for name, uuid in ((volume.vg, volume.vg_uuid), (volume.lv, volume.lv_uuid)):
            text, count = re.subn(
                rf'(^\t*{re.escape(name)} {{\n\t*id = ")[^"]+',
                rf"\g<1>{uuid}",
                text,
                count=1,
                flags=re.M,
            )
            if count != 1:
                raise SysImageError(f"{meta}: no id line for {name}:\n{text}")
        meta.write_text(text)
        # warns that it cannot check for active LVs (no device-mapper): there are none
        lvm("vgcfgrestore", pv, "-f", str(meta), volume.vg)


def extent(pv: str, volume: Volume) -> Extent:
    """Where the LV's one segment lies in `pv`: pe_start plus its first extent, in bytes."""
    rows = [
        row
        for row in report(
            "pvs",
            pv,
            "pe_start,vg_extent_size,pvseg_start,pvseg_size,vg_name,lv_name",
            "--segments",
        )
        if row["vg_name"] == volume.vg and row["lv_name"] == volume.lv
    ]
    if len(rows) != 1:
        raise SysImageError(f"{pv}: {volume.vg}/{volume.lv} is not one linear segment: {rows}")
    row = rows[0]
    size = int(row["vg_extent_size"])
    return Extent(
        int(row["pe_start"]) + int(row["pvseg_start"]) * size, int(row["pvseg_size"]) * size
    )


@contextlib.contextmanager
def attached_lv(pv: str, volume: Volume, read_only: bool = False) -> Iterator[str]:
    """The LV's data on a loop device over its extent of `pv` (what device-mapper's linear
    target would map); yields /dev/loopM, detached after."""
    where = extent(pv, volume)
    argv = [
        "losetup",
        "--find",
        "--show",
        "--offset",
        str(where.offset),
        "--sizelimit",
        str(where.size),
    ] + (["--read-only"] if read_only else [])
    loop = run([*argv, pv]).stdout.strip()
    try:
        yield loop
    finally:
        run(["losetup", "--detach", loop])
