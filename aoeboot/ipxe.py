"""The iPXE boot script the NAS serves to one box.

Newest kernel first; if its files cannot be fetched or booted, the previous kernel; then
`sanboot` of the AoE disk as the last resort. File names are relative to the script's own URL
unless a base URL is configured, so the same script works over TFTP and HTTP.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from aoeboot.errors import AoebootError
from aoeboot.paths import KERNEL_CMDLINE
from aoeboot.target import Target

# Every boot waits this long. Any key stops iPXE's countdown (menu_ui.c), so it need only give
# someone at a slow serial console or KVM switch time to press one; bench/netboot measures it.
MENU_TIMEOUT_MS = 3000
SAN_DRIVE = 0x80  # the drive number iPXE gives the first SAN disk (BIOS and UEFI alike)


# What iPXE's shell reads in a command line (core/exec.c): a word that is one of these ends
# the command, and ${...} anywhere expands a setting. A line splits at blanks only: no quote
# or escape makes either literal.
_OPERATORS = ("||", "&&", ";")
# A base URL as iPXE fetches it: a scheme, then characters with no meaning to its shell.
_BASE_URL = re.compile(r"(?:https?|tftp|ftp)://[A-Za-z0-9._~:/?=%+@!,\[\]-]+")


def check_base_url(text: str) -> str:
    """`text` if iPXE can take it as the base URL of every file the script fetches."""
    if not _BASE_URL.fullmatch(text):
        raise AoebootError(
            f"invalid base URL {text[:64]!r}",
            hint="http://, https://, tftp:// or ftp:// and a plain path, no "
            "blanks, '$', '&', '|', ';', quotes or '#'",
        )
    return text


def check_options(where: str, options: str) -> str:
    """`options` if the kernel line carries them to the kernel as they are."""
    for word in options.split():
        if word in _OPERATORS or "${" in word:
            raise AoebootError(
                f"{where} hold {word!r}, which the iPXE script would read as an "
                "operator or a setting, not pass on to the kernel",
                hint=f"remove it from {KERNEL_CMDLINE}",
            )
    return options


@dataclass(frozen=True)
class Published:
    kver: str
    kernel: str  # file name on the NAS
    initrd: str | None  # None: a unified kernel image, which carries its own
    options: str


def render(host: str, kernels: Sequence[Published], target: Target, base_url: str = "") -> str:
    base = check_base_url(base_url).rstrip("/") + "/" if base_url else ""
    for kernel in kernels:
        check_options(f"the options of kernel {kernel.kver}", kernel.options)
    labels = [f"k{i}" for i in range(len(kernels))]
    first = labels[0] if labels else "sanboot"
    # Every menu line falls through to the default: an iPXE built without menus still boots.
    lines: list[str] = [
        "#!ipxe",
        f"# aoeboot boot script for {host}; written by aoeboot, do not edit",
        f"menu aoeboot: {host} || goto {first}",
    ]
    for label, kernel in zip(labels, kernels):
        lines.append(f"item {label} Linux {kernel.kver} (root {target.name}) || goto {first}")
    lines += [
        f"item sanboot Boot {target.disk.uri} directly (sanboot) || goto {first}",
        f"choose --default {first} --timeout {MENU_TIMEOUT_MS} selected || goto {first}",
        "goto ${selected}",
    ]
    for index, (label, kernel) in enumerate(zip(labels, kernels)):
        fallback = labels[index + 1] if index + 1 < len(kernels) else "sanboot"
        # initrd= on the kernel line: EFI stub kernels find the initrd by that name.
        named = f" initrd={kernel.initrd}" if kernel.initrd else ""
        lines += [
            f":{label}",
            f"echo aoeboot: booting {kernel.kver}",
            f"kernel {base}{kernel.kernel}{named} {kernel.options}"
            f" BOOTIF=01-${{netX/mac:hexhyp}} || goto {fallback}",
            *([f"initrd {base}{kernel.initrd} || goto {fallback}"] if kernel.initrd else []),
            f"boot || goto {fallback}",
        ]
    # iPXE has already attached the disk as SAN drive 0x80 when DHCP gave it a root-path (as
    # nas-config does: that is what leaves the aBFT for root=aoe:abft); attaching it again
    # fails ("Could not open SAN device"), so let go of it first, if it is there.
    lines += [
        ":sanboot",
        f"echo aoeboot: sanboot {target.disk.uri}",
        f"sanunhook --drive {SAN_DRIVE:#x} || goto sanhook",
        ":sanhook",
        f"sanboot {target.disk.uri} || goto failed",
        ":failed",
        "echo aoeboot: nothing could be booted",
        "shell",
        "",
    ]
    return "\n".join(lines)
