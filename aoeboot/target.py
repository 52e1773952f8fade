"""The AoE target address: shelf (major), slot (minor) and an optional partition.

Accepted spellings: `e11.0`, `e11.0p2`, `aoe:e11.0[p2]` (iPXE), `/dev/etherd/e11.0[p2]`,
`etherd/e11.0[p2]` (pyudev's sys_name) and `etherd!e11.0[p2]` (the sysfs directory name).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from aoeboot.errors import AoebootError

MAX_SHELF = 0xFFFE  # 0xffff is the broadcast shelf, never a target
MAX_SLOT = 0xFE  # 0xff is the broadcast slot
MAX_PARTITION = 15  # the driver gives each disk 16 minors: the disk and p1..p15

_PREFIXES = ("aoe:", "/dev/etherd/", "etherd/", "etherd!")
# ASCII digits only: str.isdigit() would accept other scripts' digits.
_NAME = re.compile(r"e(?P<shelf>[0-9]+)\.(?P<slot>[0-9]+)(?:p(?P<part>[0-9]+))?")


@dataclass(frozen=True, order=True)
class Target:
    shelf: int
    slot: int
    partition: int | None = None

    def __post_init__(self) -> None:
        _check_range("shelf", self.shelf, 0, MAX_SHELF)
        _check_range("slot", self.slot, 0, MAX_SLOT)
        if self.partition is not None:
            _check_range("partition", self.partition, 1, MAX_PARTITION)

    @classmethod
    def parse(cls, text: str) -> Target:
        """Parse any accepted spelling; raise AoebootError naming the bad part."""
        rest = text.strip()
        for prefix in _PREFIXES:
            if rest.startswith(prefix):
                rest = rest[len(prefix) :]
                break
        match = _NAME.fullmatch(rest)
        if not match:
            raise AoebootError(
                f"invalid AoE target {text!r}",
                hint="expected eSHELF.SLOT[pPART], e.g. e11.0 or aoe:e11.0p1",
            )
        part = match.group("part")
        return cls(
            _number("shelf", match.group("shelf")),
            _number("slot", match.group("slot")),
            _number("partition", part) if part is not None else None,
        )

    @property
    def name(self) -> str:
        """`e11.0` or `e11.0p2`: the name under /dev/etherd."""
        disk = f"e{self.shelf}.{self.slot}"
        return disk if self.partition is None else f"{disk}p{self.partition}"

    @property
    def disk(self) -> Target:
        """The whole disk this target is on (itself if it has no partition)."""
        return replace(self, partition=None)

    @property
    def device(self) -> Path:
        return Path("/dev/etherd") / self.name

    @property
    def uri(self) -> str:
        """iPXE's spelling: `aoe:e11.0`, as in root-path and `sanboot`."""
        return f"aoe:{self.name}"

    @property
    def sysfs_name(self) -> str:
        """The directory name under /sys/block (partitions live inside the disk's)."""
        return f"etherd!{self.name}"

    def __str__(self) -> str:
        return self.name


def _number(what: str, digits: str) -> int:
    """The value of a run of ASCII digits, which may be too long for int() (Python refuses
    more than 4300 digits): anything longer than a shelf number is out of range anyway."""
    significant = digits.lstrip("0") or "0"
    if len(significant) > len(str(MAX_SHELF)):
        raise AoebootError(
            f"AoE {what} {significant[:8]}... ({len(significant)} digits) out of range",
            hint=f"a {what} has at most {len(str(MAX_SHELF))} digits",
        )
    return int(significant)


def _check_range(what: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise AoebootError(f"AoE {what} {value} out of range", hint=f"{what} must be {low}..{high}")
