"""The storage stack under a file system, walked in a sysfs laid out as a running box's."""

from __future__ import annotations

import pytest

from aoeboot import rootdev, stack
from aoeboot.errors import AoebootError
from aoeboot.target import Target
from tests import sysfs

PV = Target(11, 0, 3)


def test_lvm_on_an_aoe_partition(tmp_path):
    top = sysfs.lvm_on(tmp_path, sysfs.aoe_partition(tmp_path))
    found = stack.walk(top, tmp_path)
    assert found.disks == (PV,) and found.on_aoe and not found.unhandled
    assert found.options == ("rd.lvm.lv=fedora/root",)
    assert found.describe() == "fedora/root (LVM logical volume) on e11.0p3"
    assert found.below("etherd!e11.0p3") and not found.below("dm-0")


def test_lvm_on_luks_is_assembled_bottom_first(tmp_path):
    luks = sysfs.luks_on(tmp_path, sysfs.aoe_partition(tmp_path))
    top = sysfs.lvm_on(tmp_path, luks)
    found = stack.walk(top, tmp_path)
    assert found.options == (f"rd.luks.uuid=luks-{sysfs.LUKS_UUID}", "rd.lvm.lv=fedora/root")
    assert found.below(luks) and found.disks == (PV,)


def test_md_mirror_across_two_nases(tmp_path):
    legs = (sysfs.aoe_partition(tmp_path), sysfs.aoe_partition(tmp_path, "e12.0", 3, 16))
    sysfs.block(
        tmp_path,
        "md127",
        md="clean",
        md_uuid="1a2b3c4d:5e6f7a8b:9c0d1e2f:3a4b5c6d",
        slaves=legs,
        number="9:127",
    )
    found = stack.walk("md127", tmp_path)
    assert found.disks == (PV, Target(12, 0, 3))
    assert found.options == ("rd.md.uuid=1a2b3c4d:5e6f7a8b:9c0d1e2f:3a4b5c6d",)


@pytest.mark.parametrize(
    "make, says",
    [
        (
            lambda root, pv: sysfs.block(
                root, "dm-0", dm=("fedora-pool-tpool", sysfs.LVM_UUID + "-tpool"), slaves=(pv,)
            ),
            "LVM tpool device",
        ),
        (
            lambda root, pv: sysfs.block(root, "dm-0", dm=("mpatha", "mpath-3600"), slaves=(pv,)),
            "mpatha is a mpath device",
        ),
        (
            lambda root, pv: sysfs.block(root, "dm-0", md="inactive", slaves=(pv,), number="9:0"),
            "not running (inactive): half assembled",
        ),
        (
            lambda root, pv: sysfs.block(root, "bcache0", slaves=(pv,), number="250:0"),
            "bcache0 is a bcache device",
        ),
    ],
)
def test_a_layer_no_initramfs_of_ours_assembles_is_named(tmp_path, make, says):
    make(tmp_path, sysfs.aoe_partition(tmp_path))
    top = "bcache0" if (tmp_path / "sys/class/block/bcache0").exists() else "dm-0"
    found = stack.walk(top, tmp_path)
    assert found.disks == (PV,), "the walk goes on below it"
    assert len(found.unhandled) == 1 and says in found.unhandled[0], found.unhandled
    mountinfo = sysfs.mountinfo(tmp_path, f"/dev/{top}", "xfs")
    with pytest.raises(AoebootError, match="is on AoE, but"):
        rootdev.root_stack(tmp_path, mountinfo)


def test_a_local_disk_is_not_aoe(tmp_path):
    sysfs.block(tmp_path, "sda", number="8:0")
    sysfs.block(tmp_path, "sda3", under="sda", number="8:3")
    top = sysfs.lvm_on(tmp_path, "sda3")
    found = stack.walk(top, tmp_path)
    assert not found.on_aoe and found.others == ("sda3",) and found.disks == ()
    assert (
        rootdev.aoe_root(tmp_path, sysfs.mountinfo(tmp_path, "/dev/mapper/fedora-root", "xfs"))
        is None
    )


def test_a_root_across_aoe_and_a_local_disk_is_an_error(tmp_path):
    sysfs.block(tmp_path, "sda", number="8:0")
    sysfs.block(tmp_path, "sda3", under="sda", number="8:3")
    sysfs.block(
        tmp_path,
        "md0",
        md="clean",
        md_uuid="1:2:3:4",
        number="9:0",
        slaves=("sda3", sysfs.aoe_partition(tmp_path)),
    )
    with pytest.raises(AoebootError, match="both on AoE and on sda3"):
        rootdev.root_stack(tmp_path, sysfs.mountinfo(tmp_path, "/dev/md0", "xfs"))


def test_root_stack_follows_the_mount_source_through_dev_mapper(tmp_path):
    sysfs.lvm_on(tmp_path, sysfs.aoe_partition(tmp_path))
    mountinfo = sysfs.mountinfo(tmp_path, "/dev/mapper/fedora-root", "xfs")
    found = rootdev.root_stack(tmp_path, mountinfo)
    assert found is not None and found.top == "dm-0"
    assert rootdev.aoe_root(tmp_path, mountinfo) == PV


def test_a_root_straight_on_aoe_has_no_layers(tmp_path):
    sysfs.aoe_partition(tmp_path)
    found = rootdev.root_stack(tmp_path, sysfs.mountinfo(tmp_path, "/dev/etherd/e11.0p3", "btrfs"))
    assert found is not None and found.layers == () and found.disks == (PV,)


def test_zfs_is_named(tmp_path):
    mountinfo = sysfs.mountinfo(tmp_path, "rpool/ROOT/fedora", "zfs")
    with pytest.raises(AoebootError, match="is zfs"):
        rootdev.check_handled(tmp_path, mountinfo)


@pytest.mark.parametrize(
    "dm_name, vg_lv",
    [("fedora-root", "fedora/root"), ("my--vg-my--lv", "my-vg/my-lv"), ("a-b--c", "a/b-c")],
)
def test_lvm_names(dm_name, vg_lv):
    assert stack.lvm_name(dm_name) == vg_lv


def test_a_dm_name_without_a_vg_is_an_error():
    with pytest.raises(AoebootError, match="not an LVM device name"):
        stack.lvm_name("root")
