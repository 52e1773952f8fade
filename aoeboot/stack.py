"""The storage stack under a file system: from its block device down through device-mapper
(LVM, LUKS) and md to the disks beneath, as sysfs shows it (`slaves/`), under a root (the
installer bind-mounts /sys and /dev into /mnt/sysimage)."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from aoeboot.errors import AoebootError
from aoeboot.fsutil import read_or_empty, under
from aoeboot.target import Target

CLASS_BLOCK = "/sys/class/block"
UDEV_DATA = "/run/udev/data"  # udev's database: md's array UUID is there, not in sysfs
LVM, LUKS, MD = "LVM logical volume", "LUKS container", "md array"
# Options that make the initramfs assemble each kind of layer, and the dracut module that does.
OPTION_KEYS = {LVM: "rd.lvm.lv", LUKS: "rd.luks.uuid", MD: "rd.md.uuid"}


@dataclass(frozen=True)
class Layer:
    """One device above the disks: what it is, its kernel name (dm-0, md127) and its name for
    the initramfs (fedora/root, luks-UUID, the md UUID)."""

    kind: str
    device: str
    name: str

    @property
    def option(self) -> str:
        return f"{OPTION_KEYS[self.kind]}={self.name}"


@dataclass(frozen=True)
class Stack:
    """The device `top` (a kernel name), the layers from it down (each once), and the AoE disks
    at the bottom; `others` are bottom devices that are not AoE (a local disk)."""

    top: str
    layers: tuple[Layer, ...]
    disks: tuple[Target, ...]
    others: tuple[str, ...] = ()
    unhandled: tuple[str, ...] = ()  # what no initramfs of ours assembles, and why

    @property
    def on_aoe(self) -> bool:
        return bool(self.disks) and not self.others

    @property
    def options(self) -> tuple[str, ...]:
        """rd.lvm.lv=, rd.luks.uuid=, rd.md.uuid=: what assembles it, bottom layer first."""
        return tuple(dict.fromkeys(layer.option for layer in reversed(self.layers)))

    def describe(self) -> str:
        """Such as "fedora/root (LVM logical volume) on e11.0p3"."""
        disks = ", ".join([*(d.name for d in self.disks), *self.others])
        if not self.layers:
            return disks
        return " on ".join(f"{layer.name} ({layer.kind})" for layer in self.layers) + f" on {disks}"

    def below(self, device: str) -> bool:
        """Is `device` (a kernel name) in this stack under its top: a PV, a LUKS container,
        an md member, rather than the file system?"""
        if device == self.top:
            return False
        return any(layer.device == device for layer in self.layers) or any(
            device == f"etherd!{disk.name}" for disk in self.disks
        )


def block_name(device: str, root: Path = Path("/")) -> str | None:
    """The sysfs name of a /dev path (symlinks followed: /dev/mapper/fedora-root is dm-0;
    /dev/etherd/e11.0p3 is etherd!e11.0p3); None when it is no block device here."""
    dev = under(root, "/dev")
    real = Path(os.path.realpath(under(root, device)))
    try:
        name = str(real.relative_to(Path(os.path.realpath(dev))))
    except ValueError:
        return None
    name = name.replace("/", "!")
    return name if under(root, CLASS_BLOCK).joinpath(name).exists() else None


def walk(name: str, root: Path = Path("/")) -> Stack:
    """The stack under the block device `name` (its sysfs name). A layer aoeboot cannot have the
    initramfs assemble (dm-thin, a cache, multipath, bcache, an md array that is not running, a
    loop file) goes into `unhandled`, saying what it is; the walk goes on below it."""
    layers: list[Layer] = []
    disks: list[Target] = []
    others: list[str] = []
    unhandled: list[str] = []
    pending, seen = [name], set()
    while pending:
        current = pending.pop(0)
        if current in seen:  # a device reached twice (an LV over two partitions of one array)
            continue
        seen.add(current)
        sysdir = under(root, CLASS_BLOCK) / current
        parent = sysdir.resolve().parent
        if (sysdir / "partition").exists() and (
            (parent / "dm").is_dir() or (parent / "md").is_dir()
        ):
            pending.append(parent.name)  # a partition of an md array or a dm device
            continue
        try:
            layer = _layer(current, sysdir, root)
        except AoebootError as err:
            unhandled.append(str(err))
            layer = None
        else:
            if layer is None:
                backing = read_or_empty(sysdir / "loop/backing_file")
                if backing:
                    unhandled.append(
                        f"{current} is a loop file ({backing}): the initramfs cannot set it up"
                    )
                    pending += [d for d in [_device_of(backing, root)] if d is not None]
                else:
                    _bottom(current, sysdir, disks, others)
                continue
            if layer not in layers:
                layers.append(layer)
        if (sysdir / "slaves").is_dir():
            pending += sorted(p.name for p in (sysdir / "slaves").iterdir())
    return Stack(
        name,
        tuple(layers),
        tuple(dict.fromkeys(disks)),
        tuple(dict.fromkeys(others)),
        tuple(unhandled),
    )


def _layer(name: str, sysdir: Path, root: Path) -> Layer | None:
    if (sysdir / "dm").is_dir():
        return _device_mapper(name, sysdir)
    if (sysdir / "md").is_dir():
        return _md(name, sysdir, root)
    if name.startswith("bcache"):
        raise AoebootError(f"{name} is a bcache device: aoeboot cannot boot root through it")
    return None


def _device_mapper(name: str, sysdir: Path) -> Layer:
    uuid = read_or_empty(sysdir / "dm/uuid")
    dm_name = read_or_empty(sysdir / "dm/name")
    if uuid.startswith("LVM-"):
        if "-" in uuid[len("LVM-") :]:  # -tpool, -cdata, -real, ...: a layer inside LVM
            raise AoebootError(
                f"{dm_name or name} is an LVM {uuid.rsplit('-', 1)[1]} device "
                "(thin pool, cache or snapshot): aoeboot handles only linear, "
                "striped and mirrored logical volumes"
            )
        return Layer(LVM, name, lvm_name(dm_name))
    if uuid.startswith("CRYPT-LUKS"):
        hexes = uuid.split("-")[2] if uuid.count("-") >= 2 else ""
        if len(hexes) != 32:
            raise AoebootError(f"{dm_name or name}: cannot read its LUKS UUID from {uuid!r}")
        dashed = "-".join((hexes[:8], hexes[8:12], hexes[12:16], hexes[16:20], hexes[20:]))
        return Layer(LUKS, name, f"luks-{dashed}")
    kind = uuid.split("-", 1)[0] if uuid else "device-mapper"
    raise AoebootError(
        f"{dm_name or name} is a {kind} device: aoeboot cannot have the "
        "initramfs assemble it (it handles LVM, LUKS and md)"
    )


def _md(name: str, sysdir: Path, root: Path) -> Layer:
    state = read_or_empty(sysdir / "md/array_state")
    if state in ("", "clear", "inactive"):
        raise AoebootError(
            f"{name} is an md array that is not running ({state or 'no state'}): half assembled",
            hint="`mdadm --detail` shows which member is missing",
        )
    dev = read_or_empty(sysdir / "dev")
    data = read_or_empty(under(root, UDEV_DATA) / f"b{dev}")
    uuid = next(
        (line.split("=", 1)[1] for line in data.splitlines() if line.startswith("E:MD_UUID=")), None
    )
    if uuid is None:
        raise AoebootError(
            f"{name}: udev does not know its array UUID ({UDEV_DATA}/b{dev})",
            hint="`udevadm trigger` and run again",
        )
    return Layer(MD, name, uuid)


def _bottom(name: str, sysdir: Path, disks: list[Target], others: list[str]) -> None:
    """A device with no layer under it: an AoE disk or partition, or anything else."""
    disk = sysdir.resolve().parent.name if (sysdir / "partition").exists() else name
    if disk.startswith("etherd!"):
        disks.append(Target.parse(name))
    else:
        others.append(name)


def _device_of(path: str, root: Path) -> str | None:
    """The block device (sysfs name) under `path`: itself where it is one, else the one of the
    file system holding it; None for a device sysfs does not list (btrfs's anonymous ones)."""
    try:
        info = os.stat(under(root, path))
    except OSError:
        return None
    number = info.st_rdev if stat.S_ISBLK(info.st_mode) else info.st_dev
    device = under(root, "/sys/dev/block") / f"{os.major(number)}:{os.minor(number)}"
    return device.resolve().name if device.exists() else None


def lvm_name(dm_name: str) -> str:
    """VG/LV from the device-mapper name LVM gives an LV: "fedora-root" is fedora/root; a dash
    in either name is doubled ("my--vg-root" is my-vg/root)."""
    index = 0
    while index < len(dm_name):
        if dm_name.startswith("--", index):
            index += 2
        elif dm_name[index] == "-":
            vg, lv = dm_name[:index], dm_name[index + 1 :]
            return f"{vg.replace('--', '-')}/{lv.replace('--', '-')}"
        else:
            index += 1
    raise AoebootError(f"{dm_name!r} is not an LVM device name (VG-LV)")
