"""Under UEFI the sanboot fallback reaches the installed system's own boot entry: the real
installed system, with systemd-boot from the Debian archive put on its ESP by `bootctl install`
and its entry written by the distribution's `kernel-install` (layout bls, on the ESP) with our
plugin, boots over AoE like this: OVMF's PXE gets snponly.efi, iPXE runs the NAS's script, the
published kernel is corrupt, so `sanboot aoe:e11.0` hands the disk to the firmware, which starts
the ESP's systemd-boot, which boots the entry our plugin kept right; root comes up over AoE.
From inside, the probe reads which entry systemd-boot booted (LoaderEntrySelected), the aBFT
iPXE left, and what `aoeboot status` says of the firmware. One boot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aoeboot import bls
from aoelab import chroot, datadisk, fsck, installed, sysimage
from aoelab.installed import Box
from aoelab.vm import OVMF_CODE
from tests.helpers import require_files, require_programs, require_root

pytestmark = [pytest.mark.vm, pytest.mark.dracut]

LOADER_GUID = "4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"  # systemd-boot's EFI variables
# bootctl and kernel-install find the ESP at /boot/efi though it is no vfat mount here (this
# host's kernel has no vfat: sysimage stages the ESP through mtools)
ESP_ENV = {"SYSTEMD_ESP_PATH": "/boot/efi", "SYSTEMD_RELAX_ESP_CHECKS": "1"}
PROBE = {
    "entry": [
        "python3",
        "-c",
        "import sys; print(open(sys.argv[1], 'rb').read()[4:].decode('utf-16-le').rstrip('\\0'))",
        f"/sys/firmware/efi/efivars/LoaderEntrySelected-{LOADER_GUID}",
    ],
    "cmdline": ["cat", "/proc/cmdline"],
    "abft": ["od", "-An", "-tx1", "-j36", "/sys/firmware/acpi/tables/aBFT"],
    "mounts": ["findmnt", "-rn", "-o", "TARGET,SOURCE,FSTYPE,OPTIONS"],
    "status": ["aoeboot", "status", "--json"],
}


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Box:
    require_root()
    require_programs(
        "mmdebstrap", "qemu-system-x86_64", "vblade", "btrfs", "mkfs.ext4", "dnsmasq", "mcopy"
    )
    require_files(OVMF_CODE, installed.SNPONLY)
    work = tmp_path_factory.mktemp("uefi-installed")

    def prepare(target: Path) -> None:
        installed.write_probe(target, PROBE, mounts=[datadisk.DATA_MOUNTPOINT])
        chroot.chroot_run(target, ["bootctl", "install", "--no-variables"], env=ESP_ENV)

    return installed.install_box(
        work, prepare=prepare, kernel_install_env=ESP_ENV, with_initrd=True
    )


def test_sanboot_under_uefi_boots_the_entry_on_the_esp(box, tmp_path):
    with sysimage.mounted(box.disk, read_only=True) as target:
        esp = target / "boot/efi"
        assert (esp / "EFI/BOOT/BOOTX64.EFI").is_file()  # systemd-boot, where firmware looks
        entries = sorted((esp / "loader/entries").glob("*.conf"))
        assert len(entries) == 1, entries
        entry = bls.BootEntry.read(entries[0])
        options = entry.options.render()
        assert f"root=/dev/etherd/{installed.TARGET}" in options.split(), options
        assert len(entry.get_all("initrd")) == 1, entry
    # the published kernel is corrupt on the NAS: iPXE's only way left is sanboot
    for kernel in (box.nas / "aoeboot").glob("*/vmlinuz-*"):
        with open(kernel, "r+b") as handle:
            handle.write(b"\0" * 65536)
    result = installed.boot(box, tmp_path / "uefi", netboot=True, firmware="uefi", timeout=1800)
    console = result.console
    assert result.done, f"the probe never ran:\n{console[-5000:]}"
    assert "Start PXE over IPv4" in console and "aoeboot: sanboot aoe:e11.0" in console
    steps = result.steps
    assert steps["entry"].out.strip() == entries[0].name, steps["entry"]  # systemd-boot booted it
    assert options in steps["cmdline"].out, (options, steps["cmdline"].out)
    mounted = {line.split()[0]: line.split()[1] for line in steps["mounts"].out.splitlines()}
    assert mounted["/"] == f"/dev/etherd/{installed.TARGET}[/root]", mounted
    # what iPXE left for the OS: shelf 11 (little-endian), slot 0, the NIC
    assert steps["abft"].out.split() == [
        "0b",
        "00",
        "00",
        "00",
        "52",
        "54",
        "00",
        "12",
        "34",
        "56",
    ], steps["abft"].out
    status = json.loads(steps["status"].out)
    firmware = [c for c in status["checks"] if c["name"] == "firmware"]
    assert firmware[0]["level"] == "OK" and "booted with UEFI (64-bit)" in firmware[0]["message"]
    assert "aBFT" in firmware[0]["message"], firmware
    assert result.exit_code == 0
    for where, check in fsck.fsck(box.disk).items():
        assert check.clean, f"{where}: {check.output[-2000:]}"
