"""The lab's installed system (aoelab.sysimage): a Debian trixie tree from mmdebstrap, cached,
on Anaconda's disk layout; our package installed in it as a package would be; booted once from
a local virtio disk. Cold, the tree takes about a minute to build; warm, the disk is a few
seconds and the boot about a minute under TCG."""

from __future__ import annotations

import json
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aoelab import sysimage
from tests.helpers import REPO, require_programs, require_root

pytestmark = [pytest.mark.vm]

BUILD_TOOLS = ("mmdebstrap", "dpkg-architecture", "sfdisk", "partx", "losetup", "mkfs.btrfs",
               "btrfs", "mkfs.ext4", "e2fsck", "mkfs.vfat", "fsck.vfat", "mcopy", "mdir")


@pytest.fixture(scope="module")
def disk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh system disk (6.12), with the data volume's fstab line and aoeboot installed."""
    require_root()
    require_programs(*BUILD_TOOLS)
    image = sysimage.system_image(tmp_path_factory.mktemp("sysimage") / "system.img",
                                  extra_fstab=sysimage.data_fstab_line())
    with sysimage.mounted(image) as target:
        sysimage.install_aoeboot(target)
    return image


@pytest.fixture
def target(disk: Path) -> Iterator[Path]:
    with sysimage.mounted(disk) as mounted:
        yield mounted


def test_tree_is_cached_under_a_key_of_its_recipe():
    require_root()
    require_programs(*BUILD_TOOLS)
    first = sysimage.base_tree()
    started = time.monotonic()
    again = sysimage.base_tree()
    assert again == first
    assert time.monotonic() - started < 30  # reused: no mmdebstrap run
    assert first.parent == sysimage.cache_dir() / "trees"
    debs = sysimage.kernel_debs("trixie")
    assert debs.version.startswith("6.12.") and debs.version in first.name
    assert all(deb.is_file() and deb.parent.is_relative_to(sysimage.cache_dir())
               for deb in debs.debs)
    old = sysimage.kernel_debs(sysimage.OLD_SUITE)
    assert old.version.startswith("6.1.0-") and old.image.name.startswith(
        f"linux-image-{old.version}_")
    assert sysimage.tree_name(sysimage.OLD_SUITE) != first.name  # the kernel is part of the key


def test_disk_is_gpt_with_esp_boot_and_btrfs(disk: Path):
    table = json.loads(subprocess.run(["sfdisk", "--json", str(disk)], capture_output=True,
                                      text=True, check=True).stdout)["partitiontable"]
    assert table["label"] == "gpt" and table["id"] == sysimage.DISK_GUID
    parts = table["partitions"]
    assert [p["type"] for p in parts] == [sysimage.ESP_TYPE, sysimage.LINUX_TYPE,
                                          sysimage.LINUX_TYPE]
    assert parts[0]["size"] * 512 == sysimage.ESP_MIB << 20
    assert parts[1]["size"] * 512 == sysimage.BOOT_MIB << 20
    with sysimage.attached(disk, read_only=True) as loop:
        found = {n: _blkid(f"{loop}p{n}") for n in (1, 2, 3)}
    assert found[1]["TYPE"] == "vfat" and found[1]["UUID"] == sysimage.ESP_UUID
    assert found[2]["TYPE"] == "ext4" and found[2]["UUID"] == sysimage.BOOT_UUID
    assert found[3]["TYPE"] == "btrfs" and found[3]["UUID"] == sysimage.ROOT_UUID


def _blkid(device: str) -> dict:
    out = subprocess.run(["blkid", "-p", "-o", "export", device], capture_output=True,
                         text=True, check=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def test_fstab_mounts_everything_by_uuid_as_anaconda_writes_it(target: Path):
    entries = {fields[1]: fields for fields in
               (line.split() for line in (target / "etc/fstab").read_text().splitlines())
               if fields and not fields[0].startswith("#")}
    assert entries["/"] == [f"UUID={sysimage.ROOT_UUID}", "/", "btrfs",
                            "subvol=root,compress=zstd:1", "0", "0"]
    assert entries["/home"][0] == f"UUID={sysimage.ROOT_UUID}"
    assert entries["/home"][3] == "subvol=home,compress=zstd:1"
    assert entries["/boot"] == [f"UUID={sysimage.BOOT_UUID}", "/boot", "ext4", "defaults", "1",
                                "2"]
    assert entries["/boot/efi"] == [f"UUID={sysimage.ESP_UUID}", "/boot/efi", "vfat",
                                    "umask=0077,shortname=winnt", "0", "2"]
    assert entries[sysimage.DATA_MOUNTPOINT][0] == f"UUID={sysimage.DATA_UUID}"
    assert (target / sysimage.DATA_MOUNTPOINT.lstrip("/")).is_dir()
    assert (target / "etc/machine-id").read_text().strip() == sysimage.MACHINE_ID
    assert (target / "etc/hostname").read_text().strip() == sysimage.HOSTNAME
    assert "rootflags=subvol=root" in (target / "etc/kernel/cmdline").read_text()


def test_root_and_home_are_subvolumes_and_the_default_stays_the_top_level(target: Path):
    listed = subprocess.run(["btrfs", "subvolume", "list", str(target)], capture_output=True,
                            text=True, check=True).stdout
    assert {line.split()[-1] for line in listed.splitlines()} == {"root", "home"}
    default = subprocess.run(["btrfs", "subvolume", "get-default", str(target)],
                             capture_output=True, text=True, check=True).stdout
    assert default.startswith("ID 5 ")


def test_boot_holds_the_kernel_and_dracut_made_its_initramfs(target: Path):
    kernels = sysimage.boot_kernels(target)
    assert kernels == [sysimage.kernel_debs("trixie").version]
    assert (target / f"boot/initrd.img-{kernels[0]}").stat().st_size > 10 << 20
    dracut = sysimage.chroot_run(target, ["dracut", "--version"]).stdout
    assert dracut.startswith("dracut 106")
    assert "systemd 257" in sysimage.chroot_run(target, ["kernel-install", "--version"]).stdout
    state = sysimage.chroot_run(target, ["dpkg-query", "-W", "-f", "${db:Status-Abbrev}",
                                         "initramfs-tools"], check=False)
    assert not state.stdout.startswith("ii")
    modules = target / f"usr/lib/modules/{kernels[0]}/kernel/drivers/block/aoe"
    assert list(modules.glob("aoe.ko*"))


def test_aoeboot_is_installed_like_a_package(target: Path):
    version = sysimage.chroot_run(target, ["aoeboot", "--version"]).stdout
    assert "aoeboot" in version
    imported = sysimage.chroot_run(target, ["python3", "-c",
                                            "import aoeboot; print(aoeboot.__file__)"]).stdout
    assert imported.startswith("/usr/lib/python3/dist-packages/aoeboot/")
    plugin = target / "usr/lib/kernel/install.d/60-aoeboot.install"
    assert plugin.stat().st_mode & 0o777 == 0o755
    assert (target / "usr/lib/dracut/modules.d/95aoe/module-setup.sh").is_file()
    assert (target / "etc/aoeboot/aoeboot.conf").is_file()


def test_fsck_reports_every_filesystem_clean(disk: Path):
    results = sysimage.fsck(disk)
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
            "title written through the mount\n")
    with sysimage.mounted(disk) as target:
        (target / "boot/efi/loader/entries/aoelab-test-6.12.conf").unlink()
    assert sysimage.fsck(disk)["/boot/efi"].clean


def test_data_disk_has_one_ext4_partition_with_fixed_uuid_and_label(tmp_path: Path):
    require_root()
    image = sysimage.make_data_disk(tmp_path / "data.img", 64 << 20)
    with sysimage.attached(image, read_only=True) as loop:
        found = _blkid(f"{loop}p1")
        assert not Path(f"{loop}p2").exists()
    assert found["TYPE"] == "ext4"
    assert found["UUID"] == sysimage.DATA_UUID and found["LABEL"] == sysimage.DATA_LABEL


def test_install_files_puts_files_where_the_spec_does(tmp_path: Path):
    subprocess.run([REPO / "tools/install-files", tmp_path], check=True)
    expected = {
        "usr/lib/dracut/modules.d/95aoe/module-setup.sh": 0o755,
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
    for source in (REPO / "dracut/95aoe").iterdir():  # every file of the module, by glob
        installed = tmp_path / "usr/lib/dracut/modules.d/95aoe" / source.name
        assert installed.is_file(), source.name
        if source.suffix == ".rules":
            assert stat.S_IMODE(installed.stat().st_mode) == 0o644
    for rule in (REPO / "udev").glob("*.rules"):
        assert (tmp_path / "usr/lib/udev/rules.d" / rule.name).is_file()


def test_local_disk_boot_reaches_multi_user_and_powers_off_clean(disk: Path, tmp_path: Path):
    """The image's own kernel and stock dracut initramfs, the disk as local virtio: systemd
    reaches multi-user.target, the power button shuts it down, and every filesystem is clean."""
    require_programs("qemu-system-x86_64")
    boot = sysimage.boot_local(disk, tmp_path)
    console = boot.console
    assert boot.multi_user is not None, f"no multi-user.target; console tail:\n{console[-3000:]}"
    assert boot.powered_off, f"no clean power-off; console tail:\n{console[-3000:]}"
    assert boot.nic is not None and boot.nic != "eth0"  # predictable names stay on
    print(f"local boot of {boot.kernel}: multi-user.target after {boot.multi_user:.1f} s, "
          f"NIC {boot.nic}")
    for where, result in sysimage.fsck(disk).items():
        assert result.clean, f"{where} after shutdown:\n{result.output}"
