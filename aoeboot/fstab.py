"""/etc/fstab of an installed system: what its root needs on the kernel command line
(`rootflags=`, `rootfstype=`: Fedora's btrfs root lives in subvolume `root`), and which of its
devices are named by UUID=/LABEL=/PARTUUID= (links that udev must make for AoE disks)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from aoeboot import paths
from aoeboot.errors import AoebootError
from aoeboot.fsutil import under
from aoeboot.rootdev import unescape  # fstab escapes blanks as mountinfo does: \040

# Mount options that say how and when to mount, not what: never part of rootflags=.
_NOT_ROOTFLAGS = {
    "defaults",
    "ro",
    "rw",
    "auto",
    "noauto",
    "nofail",
    "_netdev",
    "users",
    "user",
    "nouser",
    "owner",
    "group",
}
# Spellings of a device that go through /dev/disk/by-*/ links.
_LINKED = {
    "UUID": "by-uuid",
    "LABEL": "by-label",
    "PARTUUID": "by-partuuid",
    "PARTLABEL": "by-partlabel",
}


@dataclass(frozen=True)
class Line:
    device: str  # as written: UUID=..., /dev/...
    mount_point: str
    fstype: str
    options: tuple[str, ...]

    @property
    def link(self) -> str | None:
        """/dev/disk/by-uuid/X for UUID=X (likewise LABEL, PARTUUID); None for a plain path."""
        key, sep, value = self.device.partition("=")
        if not sep or key not in _LINKED:
            return None
        return f"/dev/disk/{_LINKED[key]}/{value.strip(chr(34))}"

    @property
    def required(self) -> bool:
        """Does the boot wait for it (and fail without it)?"""
        return not {"nofail", "noauto"} & set(self.options)

    def rootflags(self) -> str | None:
        """The options the initramfs must mount root with (subvol=root, ...); None if none."""
        kept = [
            o
            for o in self.options
            if o not in _NOT_ROOTFLAGS and not o.startswith(("x-", "comment="))
        ]
        return ",".join(kept) or None


def parse(text: str, where: str) -> list[Line]:
    parsed = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) < 3:
            raise AoebootError(
                f"{where}:{number}: expected 'device mount-point type options', got {line!r}"
            )
        # Blanks in a field are written \040, as in mountinfo: undo that as mount(8) does.
        options = (
            tuple(unescape(os.fsencode(fields[3])).split(",")) if len(fields) > 3 else ("defaults",)
        )
        device, mount_point = (unescape(os.fsencode(f)) for f in fields[:2])
        parsed.append(Line(device, mount_point, fields[2], options))
    return parsed


def read(root: Path) -> list[Line] | None:
    """The lines of root's /etc/fstab; None when it has no fstab."""
    path = under(root, paths.FSTAB)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as err:
        raise AoebootError(f"cannot read {path}: {err}") from None
    return parse(text, str(path))


def root_line(root: Path) -> Line | None:
    """The / line of root's fstab; None without an fstab; an error for an fstab without /."""
    lines = read(root)
    if lines is None:
        return None
    found = [e for e in lines if e.mount_point == "/"]
    if not found:
        raise AoebootError(
            f"{under(root, paths.FSTAB)} has no line for /",
            hint="the installed system's fstab must mount its root",
        )
    return found[-1]


def root_options(root: Path) -> tuple[str, ...]:
    """rootflags=/rootfstype= that mount root as the installed system's fstab says."""
    line = root_line(root)
    if line is None:
        return ()
    options = []
    if line.fstype not in ("auto", "none"):
        options.append(f"rootfstype={line.fstype}")
    flags = line.rootflags()
    if flags:
        options.append(f"rootflags={flags}")
    for option in options:
        _check_passable(option, root)
    return tuple(options)


def _check_passable(option: str, root: Path) -> None:
    """The kernel command line splits at blanks outside quotes, and the initramfs's getarg at
    every blank, so a blank, quote or backslash in root's mount options cannot get there."""
    if any(char.isspace() or char in '"\\' for char in option):
        raise AoebootError(
            f"{under(root, paths.FSTAB)}: / is mounted with {option!r}, which "
            "the kernel command line cannot carry to the initramfs (a blank, "
            "quote or backslash)",
            hint="rename the subvolume or label",
        )
