"""The AoE wire format against byte layouts written out by hand from the AoEr11 spec."""

import struct

import pytest

from aoeboot import wire

SRC = bytes.fromhex("525400123456")
DST = bytes.fromhex("0a0b0c0d0e0f")


def test_query_config_broadcast_bytes():
    frame = wire.query_config(SRC, tag=0x01020304)
    assert frame[:24] == (
        b"\xff" * 6
        + SRC
        + b"\x88\xa2"  # broadcast, our MAC, ethertype 0x88A2
        + b"\x10"  # version 1, no flags
        + b"\x00"  # error
        + b"\xff\xff"  # shelf 0xffff: every shelf
        + b"\xff"  # slot 0xff: every slot
        + b"\x01"  # command 1: Query Config
        + b"\x01\x02\x03\x04"  # tag
    )
    assert frame[24:32] == b"\x00" * 8  # bufcnt, firmware, scnt, ver|ccmd 0 (read), cslen
    assert len(frame) == 60  # padded to the Ethernet minimum


def test_ata_identify_bytes():
    frame = wire.ata_identify(SRC, DST, shelf=11, slot=2, tag=7)
    assert frame[:24] == DST + SRC + b"\x88\xa2\x10\x00\x00\x0b\x02\x00\x00\x00\x00\x07"
    assert frame[24:36] == (
        b"\x00"  # aflags: not extended, no write
        + b"\x00"  # err/feature
        + b"\x01"  # one sector
        + b"\xec"  # IDENTIFY DEVICE
        + b"\x00" * 6  # LBA
        + b"\x00\x00"  # reserved
    )


def _reply_header(command: int, flags: int = wire.FLAG_RESPONSE, error: int = 0) -> bytes:
    return (
        SRC
        + DST
        + b"\x88\xa2"
        + bytes([0x10 | flags, error])
        + b"\x00\x0b\x00"
        + bytes([command])
        + b"\xde\xad\xbe\xef"
    )


def test_parse_config_reply():
    frame = (
        _reply_header(1) + b"\x00\x10" + b"\x40\x19" + b"\x02" + b"\x10" + b"\x00\x05" + b"hello"
    )
    reply = wire.parse_config_reply(frame)
    assert reply.header == wire.Header(SRC, DST, 11, 0, 1, 0xDEADBEEF, wire.FLAG_RESPONSE, 0)
    assert (reply.buffer_count, reply.firmware_version, reply.sector_count) == (16, 0x4019, 2)
    assert (reply.aoe_version, reply.config_string) == (1, b"hello")
    assert reply.header.is_response


def test_parse_identify_lba48_and_model():
    words = [0] * 256
    words[83] = 1 << 10  # LBA48 supported
    words[100:104] = [0x0000, 0x0018, 0, 0]  # 0x180000 sectors = 768 MiB
    words[60:62] = [0xFFFF, 0x0FFF]  # the LBA28 count must be ignored
    model = b"Coraid EtherDrive vblade".ljust(40)
    words[27:47] = [struct.unpack(">H", model[i : i + 2])[0] for i in range(0, 40, 2)]
    data = struct.pack("<256H", *words)
    frame = _reply_header(0) + b"\x00\x00\x00\x50" + b"\x00" * 8 + data
    reply = wire.parse_ata_reply(frame)
    assert reply.status == 0x50  # DRDY|DSC
    identity = wire.parse_identify(reply.data)
    assert identity.sectors == 0x180000 and identity.size_bytes == 768 << 20
    assert identity.model == "Coraid EtherDrive vblade"


def test_parse_identify_lba28_only():
    words = [0] * 256
    words[60:62] = [0x2000, 0x0001]  # 0x12000 sectors
    assert wire.parse_identify(struct.pack("<256H", *words)).sectors == 0x12000


@pytest.mark.parametrize(
    "frame, message",
    [
        (b"\x00" * 10, "shorter than an AoE header"),
        (SRC + DST + b"\x08\x00" + b"\x10" * 10, "not AoE"),
        (SRC + DST + b"\x88\xa2\x20" + b"\x00" * 9, "version 2"),
        (_reply_header(1) + b"\x00" * 6 + b"\x04\x01", "runs past the frame"),
        (_reply_header(0), "not Query Config"),
        (_reply_header(1, flags=0) + b"\x00" * 8, "a request, not a reply"),
    ],
)
def test_malformed_frames_rejected(frame, message):
    with pytest.raises(wire.WireError, match=message):
        wire.parse_config_reply(frame)


def test_error_reply_flags():
    header = wire.parse_header(_reply_header(1, wire.FLAG_RESPONSE | wire.FLAG_ERROR, 3))
    assert header.flags & wire.FLAG_ERROR and wire.error_text(header.error) == "device unavailable"


def test_ata_read_ext_bytes():
    frame = wire.ata_read(SRC, DST, shelf=11, slot=0, tag=9, lba=0x0102030405)
    assert frame[:24] == DST + SRC + b"\x88\xa2\x10\x00\x00\x0b\x00\x00\x00\x00\x00\x09"
    assert frame[24:36] == (
        b"\x40"  # aflags: extended (48-bit LBA), no write
        + b"\x00"  # err/feature
        + b"\x01"  # one sector
        + b"\x24"  # READ SECTORS EXT
        + b"\x05\x04\x03\x02\x01\x00"  # LBA, least significant byte first
        + b"\x00\x00"  # reserved
    )
    with pytest.raises(ValueError):
        wire.ata_read(SRC, DST, 11, 0, 9, lba=1 << 48)
