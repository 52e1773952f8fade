import os
import subprocess

import pytest

from aoeboot.errors import AoebootError
from aoeboot.fsutil import atomic_write, safe_name
from tests.helpers import require_root


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "a" / "b.conf"
    atomic_write(target, "one\n")
    atomic_write(target, "two\n", mode=0o600)
    assert target.read_text() == "two\n"
    assert target.stat().st_mode & 0o777 == 0o600
    assert os.listdir(target.parent) == ["b.conf"]


def test_read_only_filesystem_gives_one_line_and_keeps_old(tmp_path):
    require_root()
    mnt = tmp_path / "ro"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], check=True)
    try:
        atomic_write(mnt / "x.conf", "old")
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        with pytest.raises(AoebootError, match=r"cannot write .*x.conf: read-only file system$"):
            atomic_write(mnt / "x.conf", "new")
        assert (mnt / "x.conf").read_text() == "old"
        assert os.listdir(mnt) == ["x.conf"]
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_full_filesystem_leaves_old_file_and_no_temp(tmp_path):
    require_root()
    mnt = tmp_path / "full"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], check=True)
    try:
        atomic_write(mnt / "x.conf", "old")
        with pytest.raises(AoebootError, match="no space left on device"):
            atomic_write(mnt / "x.conf", b"y" * 200_000)
        assert (mnt / "x.conf").read_text() == "old"
        assert os.listdir(mnt) == ["x.conf"]
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "../x", "a\nb", "-rf", "x" * 256])
def test_safe_name_rejects(bad):
    with pytest.raises(AoebootError, match="invalid kernel version"):
        safe_name(bad, "kernel version")


def test_safe_name_accepts_kernel_versions():
    assert safe_name("6.11.4-301.fc41.x86_64", "kernel version") == "6.11.4-301.fc41.x86_64"
    assert safe_name("6.1.0-56-amd64", "kernel version") == "6.1.0-56-amd64"
