"""Listing an initramfs: the same names lsinitrd shows, from plain and compressed archives."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from aoeboot import cpio
from aoeboot.errors import AoebootError
from tests.helpers import missing, require_programs


def lsinitrd_names(image: Path) -> set[str]:
    out = subprocess.run(
        ["lsinitrd", str(image)], capture_output=True, text=True, errors="replace", check=True
    ).stdout
    # the file list: `ls -l` style lines, the name in the ninth column
    return {
        line.split()[8]
        for line in out.splitlines()
        if len(line.split()) >= 9 and line[:1] in "-dlcbps" and line[1:2] in "r-"
    }


def test_dracut_initramfs_lists_as_lsinitrd_does(aoe_initrd):
    _, image = aoe_initrd
    names = cpio.names(image)
    assert set(names) == lsinitrd_names(image)
    assert any(name.endswith("/aoe.ko") or "/aoe.ko." in name for name in names)


def test_compressed_system_initramfs_lists_as_lsinitrd_does():
    require_programs("lsinitrd")
    images = sorted(Path("/boot").glob("initrd.img-*")) + sorted(Path("/boot").glob("initramfs-*"))
    if not images:
        missing("no /boot/initrd.img-* on this machine (install linux-image-amd64 and dracut)")
    assert set(cpio.names(images[-1])) == lsinitrd_names(images[-1])


def _archive(tmp_path: Path, name: str, files: list[str]) -> bytes:
    tree = tmp_path / name
    for path in files:
        (tree / path).parent.mkdir(parents=True, exist_ok=True)
        (tree / path).write_text(f"content of {path}\n" * 100)
    listing = "\n".join(files) + "\n"
    return subprocess.run(
        ["cpio", "-o", "-H", "newc", "--quiet"],
        input=listing.encode(),
        cwd=tree,
        capture_output=True,
        check=True,
    ).stdout


@pytest.mark.parametrize("compress", [["gzip", "-c"], ["zstd", "-q", "-c"], ["xz", "-c"], None])
def test_early_cpio_then_compressed_main_archive(tmp_path, compress):
    early = _archive(tmp_path, "early", ["kernel/x86/microcode/GenuineIntel.bin"])
    main = _archive(tmp_path, "main", ["init", "usr/lib/modules/6.1/aoe.ko", "etc/os-release"])
    if compress:
        require_programs(compress[0])
        main = subprocess.run(compress, input=main, capture_output=True, check=True).stdout
    image = tmp_path / "initrd.img"
    # dracut pads the early archive to 512 bytes before the main one
    image.write_bytes(early + b"\0" * (-len(early) % 512) + main)
    assert cpio.names(image) == [
        "kernel/x86/microcode/GenuineIntel.bin",
        "init",
        "usr/lib/modules/6.1/aoe.ko",
        "etc/os-release",
    ]


def test_damaged_images_are_one_line_errors(tmp_path):
    whole = _archive(tmp_path, "t", ["init", "usr/lib/modules/6.1/aoe.ko"])
    truncated = tmp_path / "truncated.img"
    truncated.write_bytes(whole[:300])
    with pytest.raises(AoebootError, match=f"initramfs {truncated} is truncated"):
        cpio.names(truncated)
    garbage = tmp_path / "garbage.img"
    garbage.write_bytes(b"not an initramfs at all")
    with pytest.raises(AoebootError, match="unknown format"):
        cpio.names(garbage)
    bad_gzip = tmp_path / "bad.img"
    bad_gzip.write_bytes(b"\x1f\x8b" + b"\xff" * 100)
    with pytest.raises(AoebootError, match="gzip could not decompress it"):
        cpio.names(bad_gzip)


def test_dot_files_and_gzip_with_trailing_zeros(tmp_path):
    require_programs("gzip")
    main = _archive(tmp_path, "dots", [".profile", "etc/.hidden"])
    image = tmp_path / "initrd.img"
    packed = subprocess.run(["gzip", "-c"], input=main, capture_output=True, check=True).stdout
    image.write_bytes(packed + b"\0" * 512)  # gzip warns about it (exit 2); the list is whole
    assert cpio.names(image) == [".profile", "etc/.hidden"]


def test_contents_of_chosen_files_match_lsinitrd_f(aoe_initrd):
    """What status reads out of an image (its /etc/cmdline.d), as `lsinitrd -f` prints it."""
    _, image = aoe_initrd
    wanted = ["usr/lib/dracut/hooks/cmdline/90-parse-aoe.sh", "etc/os-release"]
    found = cpio.contents(image, lambda name: name in wanted)
    assert sorted(found) == wanted[:1]  # etc/os-release is a symlink: no contents of its own
    for name, data in found.items():
        shown = subprocess.run(
            ["lsinitrd", "-f", name, str(image)], capture_output=True, check=True
        ).stdout
        assert data == shown
