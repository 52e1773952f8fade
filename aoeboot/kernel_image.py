"""Kernel image files: the version an x86 bzImage names in its header (Fedora's rescue kernel
is a copy named vmlinuz-0-rescue-MACHINEID), and the initrd a UKI carries in its .initrd PE
section (kernel-install's image type `uki`: nothing dracut builds later reaches it)."""

from __future__ import annotations

import struct
from pathlib import Path

from aoeboot.errors import AoebootError

_SETUP_MAGIC_AT = 0x202  # "HdrS": the x86 boot protocol header
_VERSION_POINTER_AT = 0x20E  # kernel_version: offset of the version string, minus 0x200


def version(image: Path) -> str | None:
    """The kernel release a bzImage was built as (`6.12.48+deb13-amd64`); None if unreadable."""
    try:
        with open(image, "rb") as handle:
            head = handle.read(0x210)
            if len(head) < 0x210 or head[_SETUP_MAGIC_AT : _SETUP_MAGIC_AT + 4] != b"HdrS":
                return None
            (pointer,) = struct.unpack_from("<H", head, _VERSION_POINTER_AT)
            handle.seek(pointer + 0x200)
            text = handle.read(256).split(b"\0", 1)[0].decode("ascii", "replace")
    except OSError:
        return None
    return text.split(" ", 1)[0] or None


def uki_initrd(image: Path) -> bytes | None:
    """The .initrd section of a unified kernel image (a PE file); None if it has none."""
    try:
        data = image.read_bytes()
    except OSError as err:
        raise AoebootError(f"cannot read kernel image {image}: {err.strerror}") from None
    try:
        if data[:2] != b"MZ":
            return None
        (pe,) = struct.unpack_from("<I", data, 0x3C)
        if data[pe : pe + 4] != b"PE\0\0":
            return None
        sections, optional_size = struct.unpack_from("<H12xH", data, pe + 6)
        table = pe + 24 + optional_size
        for index in range(sections):
            entry = table + 40 * index
            name = data[entry : entry + 8].rstrip(b"\0")
            virtual_size, _, raw_size, raw_at = struct.unpack_from("<IIII", data, entry + 8)
            if name == b".initrd":
                return data[raw_at : raw_at + min(virtual_size or raw_size, raw_size)]
    except struct.error:
        raise AoebootError(f"kernel image {image} is damaged (PE headers cut short)") from None
    return None


def has_efi_stub(image: Path) -> bool:
    """Whether a kernel image is also a PE program that UEFI (and iPXE EFI) can start: a bzImage
    built with CONFIG_EFI_STUB, or a UKI. False if unreadable."""
    try:
        with open(image, "rb") as handle:
            head = handle.read(0x40)
            if len(head) < 0x40 or head[:2] != b"MZ":
                return False
            (pe,) = struct.unpack_from("<I", head, 0x3C)
            handle.seek(pe)
            return handle.read(4) == b"PE\0\0"
    except OSError:
        return False
