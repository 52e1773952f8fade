"""The AoE wire format (AoEr11): Ethernet frames of type 0x88A2, Query Config and ATA commands.

Layout after the two MACs and the ethertype (all big-endian):
  ver/flags (1)  error (1)  major/shelf (2)  minor/slot (1)  command (1)  tag (4)
Query Config arg: buffer count (2) firmware version (2) sector count (1) aoe version|ccmd (1)
                  config string length (2) config string
ATA arg:          aflags (1) err/feature (1) sector count (1) cmd/status (1) LBA (6) reserved (2)
                  data
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

ETH_P_AOE = 0x88A2
BROADCAST_MAC = b"\xff" * 6
BROADCAST_SHELF = 0xFFFF
BROADCAST_SLOT = 0xFF
AOE_VERSION = 1

FLAG_RESPONSE = 0x08
FLAG_ERROR = 0x04

CMD_ATA = 0
CMD_QUERY_CONFIG = 1

ATA_IDENTIFY = 0xEC
ATA_READ_EXT = 0x24  # READ SECTORS EXT: 48-bit LBA
AFLAG_EXTENDED = 0x40
SECTOR = 512
FRAME_HEADERS = 36  # Ethernet + AoE + ATA headers: a frame carries (MTU - 36) // 512 sectors
ATA_ERR = 0x01  # status: the command failed (the error register says why)
ATA_DF = 0x20  # status: device fault
MAX_LBA48 = (1 << 48) - 1  # words 100-103 hold 64 bits, of which LBA48 uses 48

ERRORS = {
    1: "unrecognized command",
    2: "bad argument",
    3: "device unavailable",
    4: "config string present",
    5: "unsupported version",
}

_ETH = struct.Struct("!6s6sH")
_AOE = struct.Struct("!BBHBBI")
_CONFIG = struct.Struct("!HHBBH")
_ATA = struct.Struct("!BBBB6s2x")
HEADER_LEN = _ETH.size + _AOE.size  # 24
MIN_FRAME = 60  # Ethernet minimum without FCS: short frames are padded


class WireError(ValueError):
    """A frame that is not a well-formed AoE frame."""


@dataclass(frozen=True)
class Header:
    dst: bytes
    src: bytes
    shelf: int
    slot: int
    command: int
    tag: int
    flags: int = 0
    error: int = 0

    @property
    def is_response(self) -> bool:
        return bool(self.flags & FLAG_RESPONSE)

    def pack(self) -> bytes:
        return _ETH.pack(self.dst, self.src, ETH_P_AOE) + _AOE.pack(
            (AOE_VERSION << 4) | self.flags,
            self.error,
            self.shelf,
            self.slot,
            self.command,
            self.tag,
        )


@dataclass(frozen=True)
class ConfigReply:
    header: Header
    buffer_count: int
    firmware_version: int
    sector_count: int
    aoe_version: int
    config_string: bytes


@dataclass(frozen=True)
class AtaReply:
    header: Header
    status: int
    error: int
    data: bytes

    @property
    def failed(self) -> bool:
        """The device says the command failed: its data is no answer."""
        return bool(self.status & (ATA_ERR | ATA_DF))


def frame_sectors(mtu: int) -> int:
    """The sectors one data frame carries at `mtu` (vblade advertises it): 2 at 1500, 17 at
    9000."""
    return (mtu - FRAME_HEADERS) // SECTOR


def _pad(frame: bytes) -> bytes:
    return frame + b"\0" * (MIN_FRAME - len(frame)) if len(frame) < MIN_FRAME else frame


def query_config(
    src: bytes,
    tag: int,
    shelf: int = BROADCAST_SHELF,
    slot: int = BROADCAST_SLOT,
    dst: bytes = BROADCAST_MAC,
) -> bytes:
    """A Query Config "read" (ccmd 0) request, broadcast to every target by default."""
    header = Header(dst, src, shelf, slot, CMD_QUERY_CONFIG, tag)
    return _pad(header.pack() + _CONFIG.pack(0, 0, 0, 0, 0))


def ata_identify(src: bytes, dst: bytes, shelf: int, slot: int, tag: int) -> bytes:
    """ATA IDENTIFY DEVICE for one sector (the 512-byte identify block)."""
    header = Header(dst, src, shelf, slot, CMD_ATA, tag)
    return _pad(header.pack() + _ATA.pack(0, 0, 1, ATA_IDENTIFY, b"\0" * 6))


def ata_read(
    src: bytes, dst: bytes, shelf: int, slot: int, tag: int, lba: int, count: int = 1
) -> bytes:
    """ATA READ SECTORS EXT of `count` sectors from `lba` (48-bit, least significant byte
    first, as AoE carries it)."""
    if not 0 <= lba < 1 << 48 or not 1 <= count <= 2:  # two sectors fill a 1500-byte frame
        raise ValueError(f"cannot read {count} sector(s) at LBA {lba} in one frame")
    header = Header(dst, src, shelf, slot, CMD_ATA, tag)
    return _pad(
        header.pack() + _ATA.pack(AFLAG_EXTENDED, 0, count, ATA_READ_EXT, lba.to_bytes(6, "little"))
    )


def parse_header(frame: bytes) -> Header:
    if len(frame) < HEADER_LEN:
        raise WireError(f"frame of {len(frame)} bytes is shorter than an AoE header")
    dst, src, ethertype = _ETH.unpack_from(frame)
    if ethertype != ETH_P_AOE:
        raise WireError(f"ethertype {ethertype:#06x} is not AoE")
    verflags, error, shelf, slot, command, tag = _AOE.unpack_from(frame, _ETH.size)
    if verflags >> 4 != AOE_VERSION:
        raise WireError(f"AoE version {verflags >> 4} is not {AOE_VERSION}")
    return Header(dst, src, shelf, slot, command, tag, verflags & 0x0F, error)


def _reply_header(frame: bytes, command: int, name: str, body: struct.Struct) -> Header:
    """The header of a reply to `command`, whose fixed part `body` is all there."""
    header = parse_header(frame)
    if header.command != command:
        raise WireError(f"command {header.command} is not {name}")
    if not header.is_response:  # a request: another host's, or this one's seen on a 2nd NIC
        raise WireError(f"{name} frame is a request, not a reply")
    if len(frame) < HEADER_LEN + body.size:
        raise WireError(f"{name} reply is truncated")
    return header


def parse_config_reply(frame: bytes) -> ConfigReply:
    header = _reply_header(frame, CMD_QUERY_CONFIG, "Query Config", _CONFIG)
    bufcnt, firmware, scnt, vercmd, cslen = _CONFIG.unpack_from(frame, HEADER_LEN)
    start = HEADER_LEN + _CONFIG.size
    if cslen > 1024 or start + cslen > len(frame):
        raise WireError(f"config string length {cslen} runs past the frame")
    return ConfigReply(header, bufcnt, firmware, scnt, vercmd >> 4, frame[start : start + cslen])


def parse_ata_reply(frame: bytes) -> AtaReply:
    header = _reply_header(frame, CMD_ATA, "ATA", _ATA)
    _aflags, err, _scnt, status, _lba = _ATA.unpack_from(frame, HEADER_LEN)
    return AtaReply(header, status, err, frame[HEADER_LEN + _ATA.size :])


@dataclass(frozen=True)
class Identity:
    sectors: int
    model: str
    serial: str

    @property
    def size_bytes(self) -> int:
        return self.sectors * 512


def parse_identify(data: bytes) -> Identity:
    """Size and model from an ATA IDENTIFY block (LBA48 count in words 100-103, else 60-61)."""
    if len(data) < 512:
        raise WireError(f"IDENTIFY data is {len(data)} bytes, not 512")
    words = struct.unpack_from("<256H", data)
    lba48 = words[100] | words[101] << 16 | words[102] << 32 | words[103] << 48
    sectors = lba48 if words[83] & (1 << 10) and lba48 else words[60] | words[61] << 16
    if sectors > MAX_LBA48 + 1:
        raise WireError(f"IDENTIFY sector count {sectors} is more than LBA48 addresses")
    return Identity(sectors, _ata_string(words[27:47]), _ata_string(words[10:20]))


def _ata_string(words: tuple[int, ...]) -> str:
    # ATA strings store two characters per word, the first in the high byte.
    raw = b"".join(struct.pack(">H", w) for w in words)
    # ATA strings are printable ASCII; anything else (a terminal escape from a spoofed
    # reply) must not reach the table discover prints.
    return "".join(chr(b) if 0x20 <= b < 0x7F else "?" for b in raw.strip(b" \0"))


def error_text(code: int) -> str | None:
    return ERRORS.get(code, f"error {code}") if code else None
