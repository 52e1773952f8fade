"""Frames of a capture tcpdump wrote (`-w`, classic pcap, little-endian): what the benches read
back from the NAS's side of the wire."""

from __future__ import annotations

import struct
from pathlib import Path


def read(path: Path) -> list[tuple[float, bytes]]:
    """(wall-clock time tcpdump stamped, frame) for each captured frame, in order."""
    data = path.read_bytes()
    frames, offset = [], 24  # past the file header
    while offset + 16 <= len(data):
        seconds, micros, length, _ = struct.unpack_from("<IIII", data, offset)
        frames.append((seconds + micros / 1e6, data[offset + 16 : offset + 16 + length]))
        offset += 16 + length
    return frames
