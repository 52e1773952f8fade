"""The lab's installed system (aoelab.sysimage): a Debian trixie tree from mmdebstrap, cached
(aoelab.debtree), on Anaconda's disk layout (aoelab.disklayout); our package installed in it as a
package would be (aoelab.package); booted once from a local virtio disk (aoelab.localboot). Cold,
the tree takes about a minute to build; warm, the disk is a few seconds and the boot about a minute
under TCG. Fedora Server's layout (/ on LVM, xfs; its own tree, cold a minute and a half) is built
and checked too, not booted."""

from __future__ import annotations

import json
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aoelab import (
    cache,
    chroot,
    datadisk,
    debtree,
    disklayout,
    fsck,
    localboot,
    loopdev,
    lvmdisk,
    package,
    sysimage,
)
from tests.helpers import REPO, require_programs, require_root

pytestmark = [pytest.mark.vm]

BUILD_TOOLS = (
    "mmdebstrap",
    "dpkg-architecture",
    "sfdisk",
    "partx",
    "losetup",
    "mkfs.btrfs",
    "btrfs",
    "mkfs.ext4",
    "e2fsck",
    "mkfs.vfat",
    "fsck.vfat",
    "mcopy",
    "mdir",
)


@pytest.fixture(scope="module")
def disk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh system disk (6.12), with the data volume's fstab line and aoeboot installed."""
    require_root()
    require_programs(*BUILD_TOOLS)
    image = sysimage.system_image(
        tmp_path_factory.mktemp("sysimage") / "system.img", extra_fstab=datadisk.data_fstab_line()
    )
    with sysimage.mounted(image) as target:
        package.install_aoeboot(target)
    return image


@pytest.fixture
def target(disk: Path) -> Iterator[Path]:
    with sysimage.mounted(disk) as mounted:
        yield mounted


def test_tree_is_cached_under_a_key_of_its_recipe():
    require_root()
    require_programs(*BUILD_TOOLS)
    first = debtree.base_tree()
    started = time.monotonic()
    again = debtree.base_tree()
    assert again == first
    assert time.monotonic() - started < 30  # reused: no mmdebstrap run
    assert first.parent == cache.cache_dir() / "trees"
    debs = debtree.kernel_debs("trixie")
    assert debs.version.startswith("6.12.") and debs.version in first.name
    assert all(deb.is_file() and deb.parent.is_relative_to(cache.cache_dir()) for deb in debs.debs)
    old = debtree.kernel_debs(debtree.OLD_SUITE)
    assert old.version.startswith("6.1.0-") and old.image.name.startswith(
        f"linux-image-{old.version}_"
    )
    assert debtree.tree_name(debtree.OLD_SUITE) != first.name  # the kernel is part of the key


def gpt_partitions(disk: Path, root_type: str) -> list[dict[str, Any]]:
    """The disk's GPT partitions, checked to be the ESP, /boot and `root_type`."""
    table = json.loads(
        subprocess.run(
            ["sfdisk", "--json", str(disk)], capture_output=True, text=True, check=True
        ).stdout
    )["partitiontable"]
    assert table["label"] == "gpt" and table["id"] == disklayout.DISK_GUID
    parts: list[dict[str, Any]] = table["partitions"]
    assert [p["type"] for p in parts] == [disklayout.ESP_TYPE, disklayout.LINUX_TYPE, root_type]
    assert parts[0]["size"] * 512 == disklayout.ESP_MIB << 20
    return parts


def test_disk_is_gpt_with_esp_boot_and_btrfs(disk: Path):
    parts = gpt_partitions(disk, disklayout.LINUX_TYPE)
    assert parts[1]["size"] * 512 == disklayout.BOOT_MIB << 20
    with loopdev.attached(disk, read_only=True) as loop:
        found = {n: _blkid(f"{loop}p{n}") for n in (1, 2, 3)}
    assert found[1]["TYPE"] == "vfat" and found[1]["UUID"] == disklayout.ESP_UUID
    assert found[2]["TYPE"] == "ext4" and found[2]["UUID"] == disklayout.BOOT_UUID
    assert found[3]["TYPE"] == "btrfs" and found[3]["UUID"] == disklayout.ROOT_UUID


def _blkid(device: str, *args: str) -> dict[str, str]:
    out = subprocess.run(
        ["blkid", "-p", "-o", "export", *args, device], capture_output=True, text=True, check=True
    ).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def test_fstab_mounts_everything_by_uuid_as_anaconda_writes_it(target: Path):
    entries = {
        fields[1]: fields
        for fields in (line.split() for line in (target / "etc/fstab").read_text().splitlines())
        if fields and not fields[0].startswith("#")
    }
    assert entries["/"] == [
        f"UUID={disklayout.ROOT_UUID}",
        "/",
        "btrfs",
        "subvol=root,compress=zstd:1",
        "0",
        "0",
    ]
    assert entries["/home"][0] == f"UUID={disklayout.ROOT_UUID}"
    assert entries["/home"][3] == "subvol=home,compress=zstd:1"
    assert entries["/boot"] == [
        f"UUID={disklayout.BOOT_UUID}",
        "/boot",
        "ext4",
        "defaults",
        "1",
        "2",
    ]
    assert entries["/boot/efi"] == [
        f"UUID={disklayout.ESP_UUID}",
        "/boot/efi",
        "vfat",
        "umask=0077,shortname=winnt",
        "0",
        "2",
    ]
    assert entries[datadisk.DATA_MOUNTPOINT][0] == f"UUID={datadisk.DATA_UUID}"
    assert (target / datadisk.DATA_MOUNTPOINT.lstrip("/")).is_dir()
    assert (target / "etc/machine-id").read_text().strip() == sysimage.MACHINE_ID
    assert (target / "etc/hostname").read_text().strip() == sysimage.HOSTNAME
    assert "rootflags=subvol=root" in (target / "etc/kernel/cmdline").read_text()


def test_root_and_home_are_subvolumes_and_the_default_stays_the_top_level(target: Path):
    listed = subprocess.run(
        ["btrfs", "subvolume", "list", str(target)], capture_output=True, text=True, check=True
    ).stdout
    assert {line.split()[-1] for line in listed.splitlines()} == {"root", "home"}
    default = subprocess.run(
        ["btrfs", "subvolume", "get-default", str(target)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert default.startswith("ID 5 ")


def test_boot_holds_the_kernel_and_dracut_made_its_initramfs(target: Path):
    kernels = sysimage.boot_kernels(target)
    assert kernels == [debtree.kernel_debs("trixie").version]
    assert (target / f"boot/initrd.img-{kernels[0]}").stat().st_size > 10 << 20
    dracut = chroot.chroot_run(target, ["dracut", "--version"]).stdout
    assert dracut.startswith("dracut 106")
    assert "systemd 257" in chroot.chroot_run(target, ["kernel-install", "--version"]).stdout
    state = chroot.chroot_run(
        target, ["dpkg-query", "-W", "-f", "${db:Status-Abbrev}", "initramfs-tools"], check=False
    )
    assert not state.stdout.startswith("ii")
    modules = target / f"usr/lib/modules/{kernels[0]}/kernel/drivers/block/aoe"
    assert list(modules.glob("aoe.ko*"))


def test_aoeboot_is_installed_like_a_package(target: Path):
    version = chroot.chroot_run(target, ["aoeboot", "--version"]).stdout
    assert "aoeboot" in version
    imported = chroot.chroot_run(
        target, ["python3", "-c", "import aoeboot; print(aoeboot.__file__)"]
    ).stdout
    assert imported.startswith("/usr/lib/python3/dist-packages/aoeboot/")
    plugin = target / "usr/lib/kernel/install.d/60-aoeboot.install"
    assert plugin.stat().st_mode & 0o777 == 0o755
    assert (target / "usr/lib/dracut/modules.d/59aoe/module-setup.sh").is_file()
    assert (target / "etc/aoeboot/aoeboot.conf").is_file()


def test_fsck_reports_every_filesystem_clean(disk: Path):
    results = fsck.fsck(disk)
    assert set(results) == {"/", "/boot", "/boot/efi"}
    for where, result in results.items():
        assert result.clean, f"{where}: {result.argv} -> {result.returncode}\n{result.output}"


def test_what_is_written_to_the_esp_stays_there(disk: Path):
    """Also where the host kernel has no vfat and the ESP is staged through mtools."""
    with sysimage.mounted(disk) as target:
        entry = target / "boot/efi/loader/entries/aoelab-test-6.12.conf"
        entry.parent.mkdir(parents=True)
        entry.write_text("title written through the mount\n")
    with sysimage.mounted(disk, read_only=True) as target:
        assert (target / "boot/efi/loader/entries/aoelab-test-6.12.conf").read_text() == (
            "title written through the mount\n"
        )
    with sysimage.mounted(disk) as target:
        (target / "boot/efi/loader/entries/aoelab-test-6.12.conf").unlink()
    assert fsck.fsck(disk)["/boot/efi"].clean


def test_data_disk_has_one_ext4_partition_with_fixed_uuid_and_label(tmp_path: Path):
    require_root()
    image = datadisk.make_data_disk(tmp_path / "data.img", 64 << 20)
    with loopdev.attached(image, read_only=True) as loop:
        found = _blkid(f"{loop}p1")
        assert not Path(f"{loop}p2").exists()
    assert found["TYPE"] == "ext4"
    assert found["UUID"] == datadisk.DATA_UUID and found["LABEL"] == datadisk.DATA_LABEL


def test_install_files_puts_files_where_the_spec_does(tmp_path: Path):
    subprocess.run([REPO / "tools/install-files", tmp_path], check=True)
    expected = {
        "usr/lib/dracut/modules.d/59aoe/module-setup.sh": 0o755,
        "usr/lib/kernel/install.d/60-aoeboot.install": 0o755,
        "usr/lib/systemd/system/aoeboot-publish.service": 0o644,
        "usr/lib/systemd/system/aoeboot-publish.timer": 0o644,
        "etc/aoeboot/aoeboot.conf": 0o644,
        "usr/share/man/man1/aoeboot.1": 0o644,
        "usr/share/bash-completion/completions/aoeboot": 0o644,
    }
    for path, mode in expected.items():
        assert stat.S_IMODE((tmp_path / path).stat().st_mode) == mode, path
    assert (tmp_path / "var/lib/aoeboot").is_dir()
    for source in (REPO / "dracut/59aoe").iterdir():  # every file of the module, by glob
        installed = tmp_path / "usr/lib/dracut/modules.d/59aoe" / source.name
        assert installed.is_file(), source.name
        if source.suffix == ".rules":
            assert stat.S_IMODE(installed.stat().st_mode) == 0o644
    for rule in (REPO / "udev").glob("*.rules"):
        assert (tmp_path / "usr/lib/udev/rules.d" / rule.name).is_file()


# ---------------------------------------------------------------- Fedora Server's layout

SERVER_TOOLS = (
    "mkfs.xfs",
    "xfs_repair",
    "pvcreate",
    "vgcreate",
    "lvcreate",
    "vgcfgbackup",
    "vgcfgrestore",
    "pvs",
    "vgs",
    "lvs",
)


@pytest.fixture(scope="module")
def server_disk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh system disk on Fedora Server's layout (6.12), with the data volume's fstab line."""
    require_root()
    require_programs(*BUILD_TOOLS, *SERVER_TOOLS)
    return sysimage.server_image(
        tmp_path_factory.mktemp("server") / "server.img", extra_fstab=datadisk.data_fstab_line()
    )


@pytest.fixture
def server_target(server_disk: Path) -> Iterator[Path]:
    with sysimage.mounted(server_disk) as mounted:
        yield mounted


def _lvm_report(command: str, devices: str, fields: str, *args: str) -> list[dict[str, Any]]:
    """The host's own `pvs`/`vgs`/`lvs`, seeing only `devices` (comma-separated)."""
    out = subprocess.run(
        [
            command,
            "--devices",
            devices,
            "--config",
            lvmdisk.CONFIG,
            "--reportformat",
            "json",
            "--units",
            "b",
            "--nosuffix",
            "-o",
            fields,
            *args,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [
        row for section in json.loads(out)["report"] for rows in section.values() for row in rows
    ]


def test_server_tree_is_cached_under_its_own_key():
    require_root()
    require_programs(*BUILD_TOOLS)
    first = debtree.server_tree()
    started = time.monotonic()
    assert debtree.server_tree() == first
    assert time.monotonic() - started < 30  # reused: no mmdebstrap run
    assert first.parent == cache.cache_dir() / "trees"
    assert first.name == debtree.server_tree_name()
    assert first.name != debtree.tree_name() and "-server-" in first.name
    assert debtree.kernel_debs("trixie").version in first.name
    base = [p for p in debtree.PACKAGES if not p.endswith("-")]
    assert list(debtree.SERVER_PACKAGES) == [*base, "lvm2", "xfsprogs"]


def test_server_disk_is_gpt_with_esp_xfs_boot_and_an_lvm_pv(server_disk: Path):
    parts = gpt_partitions(server_disk, disklayout.LVM_TYPE)
    assert parts[1]["size"] * 512 == disklayout.SERVER_BOOT_MIB << 20 == 1 << 30
    with loopdev.attached(server_disk, read_only=True) as loop:
        found = {n: _blkid(f"{loop}p{n}") for n in (1, 2, 3)}
    assert found[1]["TYPE"] == "vfat" and found[1]["UUID"] == disklayout.ESP_UUID
    assert found[2]["TYPE"] == "xfs" and found[2]["UUID"] == disklayout.SERVER_BOOT_UUID
    assert found[3]["TYPE"] == "LVM2_member"
    assert found[3]["UUID"] == disklayout.SERVER_VOLUME.pv_uuid
    assert disklayout.layout_of(server_disk) == disklayout.SERVER


def test_host_lvm_reads_vg_fedora_with_lv_root_on_p3_only(server_disk: Path):
    with loopdev.attached(server_disk, read_only=True) as loop:
        every = ",".join(f"{loop}p{n}" for n in (1, 2, 3))
        pvs = _lvm_report("pvs", every, "pv_name,pv_uuid,vg_name,pe_start,pv_size")
        vgs = _lvm_report(
            "vgs",
            every,
            "vg_name,vg_uuid,vg_attr,vg_systemid,pv_count,lv_count,vg_extent_size,vg_free",
        )
        lvs = _lvm_report("lvs", every, "lv_name,lv_uuid,vg_name,lv_size,segtype,seg_pe_ranges")
        p3_size = int(
            subprocess.run(
                ["blockdev", "--getsize64", f"{loop}p3"], capture_output=True, text=True, check=True
            ).stdout
        )
    assert [(pv["pv_name"], pv["vg_name"]) for pv in pvs] == [(f"{loop}p3", "fedora")]
    assert pvs[0]["pv_uuid"] == disklayout.SERVER_VOLUME.pv_uuid
    [vg] = vgs
    assert vg["vg_name"] == "fedora" and vg["vg_uuid"] == disklayout.SERVER_VOLUME.vg_uuid
    assert vg["vg_attr"][2] != "x" and vg["vg_attr"][3] != "p"  # not exported, not partial
    assert vg["vg_systemid"] == ""  # any host may activate it: the box's initramfs does
    assert (vg["pv_count"], vg["lv_count"], vg["vg_free"]) == ("1", "1", "0")
    [lv] = lvs
    assert (lv["lv_name"], lv["vg_name"], lv["segtype"]) == ("root", "fedora", "linear")
    assert lv["lv_uuid"] == disklayout.SERVER_VOLUME.lv_uuid
    extent = int(vg["vg_extent_size"])
    usable = (p3_size - int(pvs[0]["pe_start"])) // extent * extent
    assert int(lv["lv_size"]) == usable
    assert lv["seg_pe_ranges"] == f"{loop}p3:0-{usable // extent - 1}"
    # where device-mapper's linear map puts the LV's first byte: the xfs of /
    table = json.loads(
        subprocess.run(
            ["sfdisk", "--json", str(server_disk)], capture_output=True, text=True, check=True
        ).stdout
    )["partitiontable"]
    lv_start = table["partitions"][2]["start"] * 512 + int(pvs[0]["pe_start"])
    found = _blkid(str(server_disk), "-O", str(lv_start))
    assert (found["TYPE"], found["UUID"]) == ("xfs", disklayout.SERVER_ROOT_UUID)


def test_server_fstab_and_cmdline_are_anacondas(server_target: Path):
    entries = {
        fields[1]: fields
        for fields in (
            line.split() for line in (server_target / "etc/fstab").read_text().splitlines()
        )
        if fields and not fields[0].startswith("#")
    }
    assert entries["/"] == ["/dev/mapper/fedora-root", "/", "xfs", "defaults", "0", "0"]
    assert entries["/boot"] == [
        f"UUID={disklayout.SERVER_BOOT_UUID}",
        "/boot",
        "xfs",
        "defaults",
        "0",
        "0",
    ]
    assert entries["/boot/efi"] == [
        f"UUID={disklayout.ESP_UUID}",
        "/boot/efi",
        "vfat",
        "umask=0077,shortname=winnt",
        "0",
        "2",
    ]
    assert "/home" not in entries
    assert entries[datadisk.DATA_MOUNTPOINT][0] == f"UUID={datadisk.DATA_UUID}"
    assert (server_target / "etc/kernel/cmdline").read_text() == (
        "root=/dev/mapper/fedora-root ro rd.lvm.lv=fedora/root\n"
    )
    assert (server_target / "etc/machine-id").read_text().strip() == sysimage.MACHINE_ID


def test_server_root_is_the_xfs_in_the_lv_and_holds_the_tree(server_target: Path):
    found = subprocess.run(
        ["findmnt", "-J", "-o", "TARGET,FSTYPE,UUID", "-R", str(server_target)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    root = json.loads(found)["filesystems"][0]
    assert (root["fstype"], root["uuid"]) == ("xfs", disklayout.SERVER_ROOT_UUID)
    boot = [m for m in root["children"] if m["target"] == f"{server_target}/boot"]
    assert boot and (boot[0]["fstype"], boot[0]["uuid"]) == ("xfs", disklayout.SERVER_BOOT_UUID)
    for program in ("usr/bin/systemctl", "usr/sbin/lvm", "usr/sbin/xfs_repair"):
        assert (server_target / program).is_file(), program
    [kver] = sysimage.boot_kernels(server_target)
    modules = chroot.chroot_run(
        server_target, ["lsinitrd", "-m", f"/boot/initrd.img-{kver}"]
    ).stdout.split()
    assert "lvm" in modules and "dm" in modules  # the stock initramfs assembles the LV


def test_server_fsck_reports_every_filesystem_clean(server_disk: Path):
    results = fsck.fsck(server_disk)
    assert set(results) == {"/", "/boot", "/boot/efi"}
    assert [results[m].argv[0] for m in ("/", "/boot", "/boot/efi")] == [
        "xfs_repair",
        "xfs_repair",
        "fsck.vfat",
    ]
    for where, result in results.items():
        assert result.clean, f"{where}: {result.argv} -> {result.returncode}\n{result.output}"


def test_two_server_disks_mount_at_once(server_disk: Path, tmp_path: Path):
    """Every Server image has the same xfs UUIDs, which xfs refuses twice unless told."""
    copy = tmp_path / "copy.img"
    subprocess.run(["cp", "--sparse=always", str(server_disk), str(copy)], check=True)
    with (
        sysimage.mounted(server_disk, read_only=True) as first,
        sysimage.mounted(copy, read_only=True) as second,
    ):
        assert (first / "etc/fstab").read_text() == (second / "etc/fstab").read_text()


def test_local_disk_boot_reaches_multi_user_and_powers_off_clean(disk: Path, tmp_path: Path):
    """The image's own kernel and stock dracut initramfs, the disk as local virtio: systemd
    reaches multi-user.target, the power button shuts it down, and every filesystem is clean."""
    require_programs("qemu-system-x86_64")
    boot = localboot.boot_local(disk, tmp_path)
    console = boot.console
    assert boot.multi_user is not None, f"no multi-user.target; console tail:\n{console[-3000:]}"
    assert boot.powered_off, f"no clean power-off; console tail:\n{console[-3000:]}"
    assert boot.nic is not None and boot.nic != "eth0"  # predictable names stay on
    print(
        f"local boot of {boot.kernel}: multi-user.target after {boot.multi_user:.1f} s, "
        f"NIC {boot.nic}"
    )
    for where, result in fsck.fsck(disk).items():
        assert result.clean, f"{where} after shutdown:\n{result.output}"
