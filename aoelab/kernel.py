"""The Debian kernel installed on this machine (linux-image-amd64), for VM tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aoeboot import driver
from aoeboot.kver import sort_key


@dataclass(frozen=True)
class Kernel:
    version: str
    image: Path


def installed_kernel(boot: Path = Path("/boot")) -> Kernel | None:
    """The newest /boot/vmlinuz-KVER whose modules (with aoe) are installed, or None."""
    found = []
    for image in boot.glob("vmlinuz-*"):
        version = image.name[len("vmlinuz-") :]
        if driver.available(version):
            found.append(Kernel(version, image))
    return max(found, key=lambda k: sort_key(k.version), default=None)
