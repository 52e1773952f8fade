"""Ethernet MAC addresses: the one place that knows what one looks like and how it is written.

aoeboot's own form is iPXE's `hex`: six lower-case pairs with colons (`52:54:00:12:34:56`).
Users may type hyphens or capitals; iPXE's `hexhyp` (hyphens) names per-host directories,
`hexraw` (no separator) is what the aoe driver's sysfs `mac` shows and what DHCP host tags use.
"""

from __future__ import annotations

import re

from aoeboot.errors import AoebootError

_TYPED = re.compile(r"(?:[0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}")
_HEXRAW = re.compile(r"[0-9A-Fa-f]{12}")


def normal(text: str) -> str | None:
    """`text` in aoeboot's form if it is a MAC written with colons or hyphens, else None."""
    return text.lower().replace("-", ":") if _TYPED.fullmatch(text) else None


def is_mac(text: str) -> bool:
    return normal(text) is not None


def parse(text: str) -> str:
    """`text` in aoeboot's form, or an error saying it is not a MAC address."""
    found = normal(text)
    if found is None:
        raise AoebootError(f"invalid MAC address {text!r}", hint="six hex pairs: 52:54:00:12:34:56")
    return found


def one_nic(text: str) -> str:
    """`text` in aoeboot's form, if one NIC can have it: a multicast address (the broadcast
    ff:ff:ff:ff:ff:ff among them) or the null one names none, or every NIC at once."""
    found = parse(text)
    if int(found[:2], 16) & 1 or found == "00:00:00:00:00:00":
        raise AoebootError(f"{text!r} is a multicast or null address, no NIC's MAC")
    return found


def from_bytes(raw: bytes) -> str:
    """The six bytes of a frame's address field, in aoeboot's form."""
    return ":".join(f"{b:02x}" for b in raw)


def to_bytes(text: str) -> bytes:
    return bytes.fromhex(hexraw(parse(text)))


def from_hexraw(text: str) -> str | None:
    """Twelve hex digits (the aoe driver's sysfs `mac`) in aoeboot's form, else None."""
    if not _HEXRAW.fullmatch(text):
        return None
    return ":".join(text[i : i + 2] for i in range(0, 12, 2)).lower()


def hexhyp(mac: str) -> str:
    """52-54-00-12-34-56, as iPXE's ${netX/mac:hexhyp} writes it."""
    return parse(mac).replace(":", "-")


def hexraw(mac: str) -> str:
    """525400123456, as iPXE's ${netX/mac:hexraw} writes it."""
    return parse(mac).replace(":", "")
