"""The file names inside an initramfs: one or more newc cpio archives, each plain or compressed.

What `lsinitrd` lists, without the verbose listing lsinitrd formats: every kernel install
checks its initramfs.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Callable

from aoeboot.errors import AoebootError
from aoeboot.run import find_program

NEWC = b"070701"
NEWC_CRC = b"070702"
HEADER = 110
TRAILER = "TRAILER!!!"

# Leading bytes of each compressed stream dracut may write, and the program that reads it.
DECOMPRESSORS = (
    (b"\x1f\x8b", ["gzip", "-dc"]),
    (b"\x28\xb5\x2f\xfd", ["zstd", "-dc"]),
    (b"\xfd7zXZ\x00", ["xz", "-dc"]),
    (b"\x5d\x00\x00", ["xz", "--format=lzma", "-dc"]),
    (b"BZh", ["bzip2", "-dc"]),
    (b"\x02\x21\x4c\x18", ["lz4", "-dc"]),
    (b"\x89LZO", ["lzop", "-dc"]),
)


# Which files' contents to keep while listing (small text files such as /etc/cmdline.d/*).
Wanted = Callable[[str], bool]


def names(image: Path) -> list[str]:
    """Every path in `image` (without a leading '/'), archive after archive."""
    return _walk(image, lambda name: False, {})


def contents(image: Path, wanted: Wanted) -> dict[str, bytes]:
    """The contents of the regular files of `image` whose path `wanted` accepts (the last
    archive that has a path wins, as when the kernel unpacks them in order)."""
    kept: dict[str, bytes] = {}
    _walk(image, wanted, kept)
    return kept


def _walk(image: Path, wanted: Wanted, kept: dict[str, bytes]) -> list[str]:
    try:
        with open(image, "rb") as handle:
            found: list[str] = []
            while _more(handle):
                head = handle.peek(8)[:8]
                if head[:6] not in (NEWC, NEWC_CRC):
                    return found + _compressed(handle, head, image, wanted, kept)  # to the end
                found += _archive(handle, image, wanted, kept)
            return found
    except OSError as err:
        raise AoebootError(f"cannot read initramfs {image}: {err.strerror}") from None


def _compressed(
    handle: IO[bytes], head: bytes, image: Path, wanted: Wanted, kept: dict[str, bytes]
) -> list[str]:
    argv = next((argv for magic, argv in DECOMPRESSORS if head.startswith(magic)), None)
    if argv is None:
        raise AoebootError(f"initramfs {image}: unknown format (starts with {head[:6].hex()})")
    program = find_program(argv[0])
    if program is None:
        raise AoebootError(
            f"initramfs {image} is compressed with {argv[0]}, which is not installed"
        )
    # the descriptor at our logical position, not past what the buffer read ahead
    os.lseek(handle.fileno(), handle.tell(), os.SEEK_SET)
    proc = subprocess.Popen(
        [program, *argv[1:]],
        stdin=handle.fileno(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    found: list[str] = []
    try:
        while _more(proc.stdout):
            found += _archive(proc.stdout, image, wanted, kept)
    finally:
        proc.stdout.close()
        status = proc.wait()
    # gzip exits 2 for a warning only ("trailing garbage ignored"): the listing is complete
    if status != 0 and not (argv[0] == "gzip" and status == 2 and found):
        raise AoebootError(f"initramfs {image}: {argv[0]} could not decompress it")
    return found


def _archive(stream: IO[bytes], image: Path, wanted: Wanted, kept: dict[str, bytes]) -> list[str]:
    """Names of one newc archive, up to and including its trailer; the data of wanted files
    goes into `kept`."""
    found: list[str] = []
    while True:
        header = _exactly(stream, HEADER, image)
        if header[:6] not in (NEWC, NEWC_CRC):
            raise AoebootError(f"initramfs {image}: damaged cpio header")
        fields = _fields(header, image)
        mode, size, namesize = fields[1], fields[6], fields[11]
        name = _exactly(stream, namesize, image)[:-1].decode("utf-8", "replace")
        _discard(stream, _pad(HEADER + namesize), image)
        if name == TRAILER:
            return found
        plain = _plain(name)
        if mode & 0o170000 == 0o100000 and wanted(plain):  # regular files only
            kept[plain] = _exactly(stream, size, image)
            _discard(stream, _pad(size), image)
        else:
            _discard(stream, size + _pad(size), image)
        found.append(plain)


def _plain(name: str) -> str:
    """`./usr/x` and `/usr/x` as `usr/x`, as lsinitrd shows them ('.' stays '.')."""
    if name.startswith("./") and len(name) > 2:
        return name[2:]
    return name.lstrip("/") or "."


def _fields(header: bytes, image: Path) -> Sequence[int]:
    try:
        return [int(header[6 + 8 * i : 14 + 8 * i], 16) for i in range(13)]
    except ValueError:
        raise AoebootError(f"initramfs {image}: damaged cpio header") from None


def _pad(length: int) -> int:
    return (4 - length % 4) % 4


def _exactly(stream: IO[bytes], count: int, image: Path) -> bytes:
    data = stream.read(count)
    if len(data) != count:
        raise AoebootError(f"initramfs {image} is truncated")
    return data


def _discard(stream: IO[bytes], count: int, image: Path) -> None:
    while count > 0:
        chunk = stream.read(min(count, 1 << 20))
        if not chunk:
            raise AoebootError(f"initramfs {image} is truncated")
        count -= len(chunk)


def _more(stream: IO[bytes]) -> bool:
    """Skip the NUL padding between archives; whether anything follows."""
    while True:
        head = stream.peek(512)[:512]  # type: ignore[attr-defined]
        if not head:
            return False
        zeros = len(head) - len(head.lstrip(b"\0"))
        if zeros == 0:
            return True
        stream.read(zeros)
