"""Which iPXE image each firmware gets: the DHCP client-architecture option (93, RFC 4578).

PXE firmware names its architecture in option 93. BIOS (0) runs `undionly.kpxe`; x86-64 UEFI
(7, the value OVMF and most PCs send; 9 from some older firmware) runs an EFI build of iPXE
(`snponly.efi` drives the NIC through the firmware's own network driver, which the firmware just
proved it has; `ipxe.efi` brings iPXE's drivers); arm64 UEFI (11) gets an image only when one is
named. Every other architecture gets no boot file: an image it cannot run would only fail later.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aoeboot.errors import AoebootError

# firmware name -> option 93 values, in the order the fragments test them
ARCHES: dict[str, tuple[int, ...]] = {"bios": (0,), "efi-x86_64": (7, 9), "efi-arm64": (11,)}
# firmware name -> the nas-config option naming its image
IMAGE_OPTIONS = {
    "bios": "--bios-image",
    "efi-x86_64": "--efi-image",
    "efi-arm64": "--arm64-efi-image",
}

# What a DHCP server's configuration can carry unquoted and unescaped: no white space, quotes,
# backslashes, commas (dnsmasq's separator), ; { } (isc-dhcpd's syntax) or # (comments).
_PLAIN = re.compile(r"[!$%&()*+\-./0-9:=?@A-Z\[\]^_a-z|~]+")


def check_plain(what: str, value: str) -> str:
    """`value` unchanged if a DHCP configuration can carry it as a file name or URL."""
    if not _PLAIN.fullmatch(value):
        raise AoebootError(
            f"{what}: {value!r} is not a plain file name or URL "
            "(no spaces, quotes, backslashes, commas, ';', '{', '}' or '#')"
        )
    return value


# BOOTP's file field, where DHCP servers put the boot file name and PXE firmware reads it
# (option 67, where some put it instead, holds 255).
BOOT_FILE_MAX = 128
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def check_boot_file(what: str, value: str) -> str:
    """`value` unchanged if it can be a DHCP boot file name: plain (check_plain), a path or a
    URL (scheme://), never `tag:x` or `net:x`, which dnsmasq's dhcp-boot= reads as a tag (and
    then rejects the line: the NAS's DHCP server does not start), and at most BOOT_FILE_MAX
    bytes."""
    check_plain(what, value)
    if ":" in value.split("/", 1)[0] and not _URL.match(value):
        raise AoebootError(
            f"{what}: {value!r} is neither a path nor a URL (scheme://...): "
            "dnsmasq would read it as a tag"
        )
    size = len(value.encode())
    if size > BOOT_FILE_MAX:
        raise AoebootError(
            f"{what}: {value[:32]!r}... ({size} bytes) is longer than the "
            f"{BOOT_FILE_MAX} bytes of the DHCP file field, where the boot file "
            "name goes"
        )
    return value


@dataclass(frozen=True)
class Images:
    """The iPXE image per firmware, as the NAS's TFTP root names them; "" = none offered."""

    bios: str = "undionly.kpxe"
    efi_x86_64: str = "snponly.efi"
    efi_arm64: str = ""

    def by_firmware(self) -> dict[str, str]:
        """firmware name (as ARCHES) -> image, only those that are offered."""
        named = {"bios": self.bios, "efi-x86_64": self.efi_x86_64, "efi-arm64": self.efi_arm64}
        return {firmware: image for firmware, image in named.items() if image}

    def checked(self) -> Images:
        for firmware, image in self.by_firmware().items():
            check_boot_file(IMAGE_OPTIONS[firmware], image)
        if not self.by_firmware():
            raise AoebootError(
                "no iPXE image left to offer: name at least one of --bios-image, "
                "--efi-image, --arm64-efi-image"
            )
        return self
