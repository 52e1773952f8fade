"""fstab: root's mount options for the command line, and devices named through udev links."""

from __future__ import annotations

import pytest

from aoeboot import fstab
from aoeboot.errors import AoebootError

# As Anaconda writes it for the default layout (btrfs subvolumes, ext4 /boot, the ESP).
ANACONDA = """\
#
# /etc/fstab
# Created by anaconda on Tue Nov 24 10:00:00 2026
UUID=1b2c3d4e-0000-4000-8000-000000000003 /      btrfs   subvol=root,compress=zstd:1 0 0
UUID=1b2c3d4e-0000-4000-8000-000000000002 /boot                   ext4    defaults        1 2
UUID=1B2C-0001          /boot/efi               vfat    umask=0077,shortname=winnt 0 2
UUID=1b2c3d4e-0000-4000-8000-000000000003 /home  btrfs   subvol=home,compress=zstd:1 0 0
LABEL=data /srv/my\\040data ext4 defaults,nofail,x-systemd.device-timeout=30 0 2
"""


def root_with(tmp_path, text):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/fstab").write_text(text)
    return tmp_path


def test_root_options_from_the_installers_layout(tmp_path):
    root = root_with(tmp_path, ANACONDA)
    assert fstab.root_options(root) == ("rootfstype=btrfs", "rootflags=subvol=root,compress=zstd:1")


def test_entries_and_their_links(tmp_path):
    entries = fstab.read(root_with(tmp_path, ANACONDA))
    assert entries is not None
    assert [e.mount_point for e in entries] == ["/", "/boot", "/boot/efi", "/home", "/srv/my data"]
    assert entries[1].link == "/dev/disk/by-uuid/1b2c3d4e-0000-4000-8000-000000000002"
    assert entries[4].link == "/dev/disk/by-label/data"
    assert entries[1].required and not entries[4].required  # nofail: the boot goes on without
    assert fstab.parse("/dev/etherd/e11.0p1 / ext4 defaults 0 0\n", "x")[0].link is None


@pytest.mark.parametrize(
    "line, options",
    [
        ("/dev/etherd/e11.0p1 / ext4 defaults 0 1", ("rootfstype=ext4",)),
        (
            "/dev/etherd/e11.0p1 / ext4 rw,errors=remount-ro 0 1",
            ("rootfstype=ext4", "rootflags=errors=remount-ro"),
        ),
        ("UUID=x / auto noauto,x-systemd.growfs 0 0", ()),
    ],
)
def test_what_is_and_is_not_a_root_flag(tmp_path, line, options):
    assert fstab.root_options(root_with(tmp_path, line + "\n")) == options


def test_no_fstab_means_no_options(tmp_path):
    assert fstab.root_options(tmp_path) == ()


def test_fstab_without_root_is_a_one_line_error(tmp_path):
    root = root_with(tmp_path, "UUID=x /boot ext4 defaults 1 2\n")
    with pytest.raises(AoebootError) as err:
        fstab.root_options(root)
    assert str(err.value).startswith(f"{root}/etc/fstab has no line for /")


def test_broken_line_names_file_and_line(tmp_path):
    root = root_with(tmp_path, "# ok\nUUID=x /boot\n")
    with pytest.raises(AoebootError, match=r"etc/fstab:2: expected 'device mount-point type"):
        fstab.read(root)
