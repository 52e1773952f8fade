"""How Fedora's installer lays out the system disk, every GUID and UUID a fixed constant.

WORKSTATION, the default everywhere, is Anaconda's default on UEFI: GPT; p1 the ESP (vfat) on
/boot/efi, p2 /boot (ext4), p3 btrfs with subvolumes `root` (/) and `home` (/home); fstab mounts
all four by UUID with Anaconda's options, and the kernel command line needs
`rootflags=subvol=root` (the top level stays the default subvolume, as on Fedora).

SERVER is Fedora Server's default: the same ESP, p2 /boot (xfs, 1 GiB), p3 an LVM physical
volume with VG `fedora` and one LV `root` (xfs) over all of it; fstab mounts / as
/dev/mapper/fedora-root, the kernel command line says `rd.lvm.lv=fedora/root`, and its tree
(debtree.server_tree) adds lvm2 and xfsprogs. aoelab.lvmdisk writes the LVM metadata without
activating it and reaches the LV through a loop device over its extents, so the host needs no
device-mapper.

A disk's layout is told by p3's partition type (layout_of), so what mounts, checks or boots a
disk needs no more than its path.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from aoelab import lvmdisk, mounts
from aoelab.debtree import base_tree, server_tree
from aoelab.imagerun import SysImageError, run

# The disk. GUIDs as sfdisk takes them; filesystem UUIDs as mkfs takes them.
DISK_GUID = "A0E0B007-0000-4000-8000-0000000000D0"
ESP_PARTUUID = "A0E0B007-0000-4000-8000-0000000000E1"
BOOT_PARTUUID = "A0E0B007-0000-4000-8000-0000000000B2"
ROOT_PARTUUID = "A0E0B007-0000-4000-8000-0000000000C3"
ESP_UUID = "A0E0-B001"  # vfat volume id; fstab and by-uuid write it like this
BOOT_UUID = "a0e0b007-0000-4000-8000-000000000b00"
ROOT_UUID = "a0e0b007-0000-4000-8000-000000000f00"  # the btrfs filesystem (root and home)
ROOT_LABEL = "aoebox"
ESP_TYPE = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
# Anaconda's /boot and btrfs partitions: "Linux filesystem" (not the discoverable root type, so
# systemd-gpt-auto-generator leaves them alone).
LINUX_TYPE = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
ESP_MIB = 600  # as Anaconda makes it: a kernel and its initramfs fit when the ESP is $BOOT
BOOT_MIB = 512  # two kernels with their generic dracut images fit
ROOT_SUBVOL = "root"
HOME_SUBVOL = "home"
BTRFS_OPTIONS = "compress=zstd:1"

# Fedora Server's disk (SERVER): the ESP and the partition GUIDs as above; /boot is xfs, p3 an
# LVM PV whose one LV holds / (xfs).
LVM_TYPE = "E6D6D379-F507-44C2-A23C-238F2A3DF928"  # "Linux LVM": what blivet gives a PV
SERVER_BOOT_MIB = 1024  # Anaconda's /boot on Server
SERVER_BOOT_UUID = "a0e0b007-0000-4000-8000-000000005b00"  # xfs
SERVER_ROOT_UUID = "a0e0b007-0000-4000-8000-000000005f00"  # the xfs in LV fedora/root
SERVER_VOLUME = lvmdisk.Volume(
    vg="fedora",
    lv="root",
    pv_uuid="a0e0b0-0700-4000-8000-0000-0000-00pv03",
    vg_uuid="a0e0b0-0700-4000-8000-0000-0000-00vg00",
    lv_uuid="a0e0b0-0700-4000-8000-0000-0000-00lv00",
)


@dataclass(frozen=True)
class Mount:
    """One line of the installed system's fstab, and the partition that holds it."""

    partition: int  # on the system disk (for an LV: its PV's)
    source: str  # fstab's first field: UUID=... or a device
    mountpoint: str
    fstype: str
    options: str  # as the installer writes them in fstab
    dump: int
    passno: int

    def line(self) -> str:
        return (
            f"{self.source} {self.mountpoint} {self.fstype} {self.options} {self.dump} "
            f"{self.passno}"
        )


LAYOUT = (  # WORKSTATION's, in mount order
    Mount(3, f"UUID={ROOT_UUID}", "/", "btrfs", f"subvol={ROOT_SUBVOL},{BTRFS_OPTIONS}", 0, 0),
    Mount(2, f"UUID={BOOT_UUID}", "/boot", "ext4", "defaults", 1, 2),
    Mount(1, f"UUID={ESP_UUID}", "/boot/efi", "vfat", "umask=0077,shortname=winnt", 0, 2),
    Mount(3, f"UUID={ROOT_UUID}", "/home", "btrfs", f"subvol={HOME_SUBVOL},{BTRFS_OPTIONS}", 0, 0),
)
# Anaconda's fstab on Server: xfs is never checked at boot (passno 0), / is named by its LV.
SERVER_MOUNTS = (
    Mount(3, SERVER_VOLUME.mapper, "/", "xfs", "defaults", 0, 0),
    Mount(2, f"UUID={SERVER_BOOT_UUID}", "/boot", "xfs", "defaults", 0, 0),
    Mount(1, f"UUID={ESP_UUID}", "/boot/efi", "vfat", "umask=0077,shortname=winnt", 0, 2),
)
# Options that keep a read-only mount from writing: no journal or log replay.
READ_ONLY = {
    "ext4": "ro,noload",
    "btrfs": "ro,rescue=nologreplay",
    "vfat": "ro",
    "xfs": "ro,norecovery",
}
# What the host adds to its own mounts: xfs refuses a second filesystem with a UUID already
# mounted, and every Server image has the same ones.
HOST_OPTIONS = {"xfs": "nouuid"}


@contextlib.contextmanager
def _partition_devices(loop: str, read_only: bool) -> Iterator[dict[int, str]]:
    """Each partition's filesystem is on the partition itself."""
    yield {n: f"{loop}p{n}" for n in (1, 2, 3)}


@contextlib.contextmanager
def _server_devices(loop: str, read_only: bool) -> Iterator[dict[int, str]]:
    """p3's filesystem is in the LV on it, reached through a loop device over its extents."""
    with lvmdisk.attached_lv(f"{loop}p3", SERVER_VOLUME, read_only) as lv:
        yield {1: f"{loop}p1", 2: f"{loop}p2", 3: lv}


def _make_esp(loop: str) -> None:
    run(["mkfs.vfat", "-F", "32", "-i", ESP_UUID.replace("-", ""), f"{loop}p1"])


def _make_filesystems(loop: str) -> None:
    _make_esp(loop)
    run(["mkfs.ext4", "-q", "-F", "-U", BOOT_UUID, f"{loop}p2"])
    run(["mkfs.btrfs", "-q", "-f", "-U", ROOT_UUID, "-L", ROOT_LABEL, f"{loop}p3"])
    with tempfile.TemporaryDirectory(prefix="btrfs-top.") as top:
        # the top level (subvolid 5) stays the default subvolume, as on Fedora
        with mounts.mount(f"{loop}p3", Path(top), "subvolid=5", "btrfs"):
            for name in (ROOT_SUBVOL, HOME_SUBVOL):
                run(["btrfs", "-q", "subvolume", "create", f"{top}/{name}"])


def _make_server_filesystems(loop: str) -> None:
    _make_esp(loop)
    run(["mkfs.xfs", "-q", "-f", "-m", f"uuid={SERVER_BOOT_UUID}", f"{loop}p2"])
    lvmdisk.create(f"{loop}p3", SERVER_VOLUME)
    with lvmdisk.attached_lv(f"{loop}p3", SERVER_VOLUME) as lv:
        run(["mkfs.xfs", "-q", "-f", "-m", f"uuid={SERVER_ROOT_UUID}", lv])


@dataclass(frozen=True)
class Layout:
    """How one of Fedora's installers lays out the system disk: GPT with the ESP as p1, /boot
    as p2 (`boot_mib`), the rest p3 (`root_type`); what goes on them and how the system finds
    them again."""

    name: str
    boot_mib: int
    root_type: str  # p3's GPT partition type
    mounts: tuple[Mount, ...]  # fstab, in mount order
    cmdline: str  # /etc/kernel/cmdline: what the boot loader's config leaves there
    tree: Callable[[str, Path | None], Path]  # (kernel, cache) -> the tree's tarball
    make_filesystems: Callable[[str], None]  # on the partitioned /dev/loopN
    # (/dev/loopN, read_only) -> the device that holds each partition's filesystem
    devices: Callable[[str, bool], contextlib.AbstractContextManager[dict[int, str]]]


ROOT_CMDLINE = f"root=UUID={ROOT_UUID} ro rootflags=subvol={ROOT_SUBVOL}"
SERVER_CMDLINE = f"root={SERVER_VOLUME.mapper} ro rd.lvm.lv={SERVER_VOLUME.vg}/{SERVER_VOLUME.lv}"

WORKSTATION = Layout(
    "workstation",
    BOOT_MIB,
    LINUX_TYPE,
    LAYOUT,
    ROOT_CMDLINE,
    base_tree,
    _make_filesystems,
    _partition_devices,
)
SERVER = Layout(
    "server",
    SERVER_BOOT_MIB,
    LVM_TYPE,
    SERVER_MOUNTS,
    SERVER_CMDLINE,
    server_tree,
    _make_server_filesystems,
    _server_devices,
)
LAYOUTS = (WORKSTATION, SERVER)


def layout_of(image: Path) -> Layout:
    """The layout of the system disk `image`, told by p3's partition type."""
    table = json.loads(run(["sfdisk", "--json", str(image)]).stdout)["partitiontable"]
    parts = table.get("partitions", [])
    found = [
        layout
        for layout in LAYOUTS
        if len(parts) == 3 and parts[2]["type"].upper() == layout.root_type
    ]
    if not found:
        raise SysImageError(f"{image}: not a system disk of a known layout: {parts}")
    return found[0]


def fstab(extra: str | None = None, layout: Layout = WORKSTATION) -> str:
    """/etc/fstab as Anaconda writes it for `layout` (plus `extra` lines)."""
    by_uuid = all(mount.source.startswith("UUID=") for mount in layout.mounts)
    lines = [
        "# /etc/fstab: written by aoelab.sysimage like Anaconda's"
        + (", by UUID" if by_uuid else "")
    ]
    lines += [mount.line() for mount in layout.mounts]
    text = "\n".join(lines) + "\n"
    return text + (extra.rstrip("\n") + "\n" if extra else "")


def partition(image: Path, size: int, layout: Layout) -> None:
    """A fresh sparse file `image` of `size` bytes with `layout`'s GPT: ESP, /boot, the rest."""
    with open(image, "wb") as handle:
        handle.truncate(size)
    script = (
        f"label: gpt\nlabel-id: {DISK_GUID}\n"
        f"start=2048, size={ESP_MIB}MiB, type={ESP_TYPE}, uuid={ESP_PARTUUID}, "
        'name="EFI System Partition"\n'
        f"size={layout.boot_mib}MiB, type={LINUX_TYPE}, uuid={BOOT_PARTUUID}\n"
        f"type={layout.root_type}, uuid={ROOT_PARTUUID}\n"
    )
    run(["sfdisk", "-q", str(image)], input=script)
