"""Kernel image headers: the release a bzImage names (Fedora's rescue kernel is a renamed copy)."""

from __future__ import annotations

import shutil

from aoeboot import initramfs, kernel_image
from aoelab.kernel import installed_kernel
from tests.helpers import missing


def test_version_of_the_installed_debian_kernel(tmp_path):
    kernel = installed_kernel()
    if kernel is None:
        missing("no installed kernel (linux-image-amd64)")
    assert kernel_image.version(kernel.image) == kernel.version
    # the rescue copy keeps its header, whatever its name
    rescue = tmp_path / "boot/vmlinuz-0-rescue-0123456789abcdef0123456789abcdef"
    rescue.parent.mkdir()
    shutil.copy(kernel.image, rescue)
    (tmp_path / "boot/initramfs-0-rescue-0123456789abcdef0123456789abcdef.img").write_bytes(b"")
    assert initramfs.rescue_images(tmp_path) == [
        initramfs.Rescue(
            tmp_path / "boot/initramfs-0-rescue-0123456789abcdef0123456789abcdef.img",
            rescue,
            kernel.version,
        )
    ]


def test_not_a_kernel(tmp_path):
    (tmp_path / "x").write_bytes(b"\0" * 4096)
    assert kernel_image.version(tmp_path / "x") is None
    assert kernel_image.version(tmp_path / "missing") is None
    assert kernel_image.uki_initrd(tmp_path / "x") is None
