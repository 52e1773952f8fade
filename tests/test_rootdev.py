"""Which device holds a mount point, from mountinfo text as the kernel writes it."""

import os
from pathlib import Path

from aoeboot.rootdev import aoe_root, mount_source
from aoeboot.target import Target

# The kernel writes a mount point's bytes as they are, except blank, tab, newline and backslash,
# which become \040, \011, \012 and \134.
MOUNTINFO = b"".join(
    [
        b"22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n",
        b"30 22 152:177 / /mnt/\xc3\xa9 rw,relatime shared:9 - ext4 /dev/etherd/e11.0p1 rw\n",
        b"31 22 152:193 / /mnt/my\\040root rw shared:10 - ext4 /dev/etherd/e11.1p1 rw\n",
        b"32 22 0:40 / /mnt/tab\\011back\\134slash rw shared:11 - tmpfs my\\040tmp rw\n",
    ]
)


def _mountinfo(tmp_path: Path) -> Path:
    path = tmp_path / "mountinfo"
    path.write_bytes(MOUNTINFO)
    return path


def test_non_ascii_mount_point_is_read_as_its_bytes(tmp_path):
    assert mount_source(Path("/mnt/é"), _mountinfo(tmp_path)) == "/dev/etherd/e11.0p1"
    assert aoe_root(Path("/mnt/é"), _mountinfo(tmp_path)) == Target(11, 0, 1)


def test_octal_escapes_are_decoded(tmp_path):
    info = _mountinfo(tmp_path)
    assert mount_source(Path("/mnt/my root"), info) == "/dev/etherd/e11.1p1"
    assert mount_source(Path("/mnt/tab\tback\\slash"), info) == "my tmp"
    assert mount_source(Path("/mnt/my\\040root"), info) is None


def test_escaped_bytes_are_bytes_not_characters(tmp_path):
    # \303\251 are the two bytes of UTF-8 "é", not the characters "Ã©"
    info = tmp_path / "mountinfo"
    info.write_bytes(b"30 22 152:177 / /mnt/\\303\\251 rw - ext4 /dev/etherd/e11.2p1 rw\n")
    assert mount_source(Path("/mnt/é"), info) == "/dev/etherd/e11.2p1"


def test_the_last_mount_on_a_point_is_the_visible_one(tmp_path):
    info = tmp_path / "mountinfo"
    info.write_bytes(MOUNTINFO + b"40 22 0:41 / / rw shared:20 - overlay /dev/etherd/e11.3p2 rw\n")
    assert aoe_root(Path("/"), info) == Target(11, 3, 2)
    assert aoe_root(Path("/mnt/nothing"), info) is None


def test_a_mount_point_that_is_not_utf8_is_its_bytes_and_spoils_nothing(tmp_path):
    info = tmp_path / "mountinfo"
    info.write_bytes(MOUNTINFO + b"41 22 0:42 / /mnt/caf\xe9 rw - tmpfs latin1 rw\n")
    assert mount_source(Path(os.fsdecode(b"/mnt/caf\xe9")), info) == "latin1"
    assert mount_source(Path("/mnt/my root"), info) == "/dev/etherd/e11.1p1"
