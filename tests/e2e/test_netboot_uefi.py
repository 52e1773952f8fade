"""Netboot under UEFI, end to end, in one boot: OVMF's own PXE (the NIC has no iPXE ROM) asks
DHCP as x86-64 UEFI (option 93 = 7); dnsmasq, configured with what `aoeboot nas-config` prints,
offers snponly.efi; iPXE EFI runs the published script; the newest kernel is corrupt, so the
previous one (EFI stub, initrd= from iPXE) boots, and its root is `root=aoe:abftp1`: the disk
and the NIC come from the aBFT that iPXE installed as an ACPI table, with no rd.aoe.iface=.
Then an aBFT alone, with no AoE option at all (a direct boot: quick)."""

from __future__ import annotations

import shutil

import pytest

from aoeboot import publish
from aoeboot.config import BootConfig, Config, PublishConfig
from aoeboot.target import Target
from aoelab.disk import MARKER, make_disk
from aoelab.dnsmasq import Dnsmasq
from aoelab.installed import SNPONLY
from aoelab.vblade import Vblade
from aoelab.vm import CONSOLE_ARGS, OVMF_CODE, VM
from tests.helpers import aoeboot, require_files, require_programs

pytestmark = [pytest.mark.vm, pytest.mark.dracut]

MAC = "52:54:00:12:34:56"
HOST = MAC.replace(":", "-")


def test_uefi_pxe_snponly_previous_kernel_root_from_abft(nas, tmp_path, kernel, initramfs):
    require_programs("dnsmasq")
    require_files(OVMF_CODE, SNPONLY)
    tftp = tmp_path / "tftp"
    tftp.mkdir()
    shutil.copy(SNPONLY, tftp)
    config = Config(BootConfig(Target(11, 0, 1), (MAC,)), PublishConfig(str(tftp)))
    root = tmp_path / "root"
    image = initramfs("systemd")
    publish.after_add(
        root=root,
        config=config,
        kver="6.1.0-56-amd64",
        kernel=kernel.image,
        initrd=image,
        options=(CONSOLE_ARGS, "root=aoe:abftp1", "aoeboot.test=abft"),
    )
    publish.after_add(
        root=root,
        config=config,
        kver="6.1.0-57-amd64",
        kernel=kernel.image,
        initrd=image,
        options=(CONSOLE_ARGS, "root=/dev/etherd/e11.0p1", "aoeboot.test=newest"),
    )
    newest = next((tftp / HOST).glob("vmlinuz-6.1.0-57-amd64-*"))
    with open(newest, "r+b") as handle:  # header overwritten, size kept (see test_netboot)
        handle.write(b"\0" * 65536)
    fragment = aoeboot("nas-config", "--mac", MAC, "--target", "e11.0p1", "--format", "dnsmasq")
    assert fragment.returncode == 0, fragment.stderr
    disk = make_disk(tmp_path / "root.img")
    with (
        Dnsmasq(nas, "tap0", tftp, fragment.stdout, tmp_path) as server,
        Vblade(nas, 11, 0, "tap0", disk),
    ):
        vm = VM(
            nas, tmp_path / "console.log", netboot=True, mac=MAC, firmware="uefi", option_rom=False
        )
        with vm:
            match = vm.wait_for(MARKER, 600)
            seconds = vm.elapsed()
            vm.wait_exit(60)
        log = server.log.read_text(errors="replace")
    console = vm.text()
    assert match, f"no root over AoE; console tail:\n{console[-3000:]}"
    print(f"UEFI netboot, power-on to root mounted: {seconds:.0f} s (TCG)")
    assert "Start PXE over IPv4" in console  # OVMF's PXE, not an iPXE option ROM
    assert f"sent {tftp}/snponly.efi" in log and "using SNP" in console
    assert "EFI stub" in console
    assert "aoeboot.test=abft" in console and "aoeboot.test=newest" not in console
    assert "rd.aoe.iface" not in console and "ACPI: aBFT" in console
    assert "root=/dev/etherd/e11.0p1" in console.split(MARKER)[1].splitlines()[0]


def test_an_abft_alone_makes_root_label_boot_over_aoe(nas, tmp_path, kernel, initramfs):
    """No AoE option at all: `root=LABEL=` and no rd.aoe.iface=, rd.aoe or BOOTIF=. The aBFT
    (here given to the VM as an ACPI table by qemu, laid out as iPXE writes it: shelf 11 little-
    endian, slot 0, reserved, the NIC's MAC) says AoE is wanted and on which NIC. Without it
    the module would not look for AoE, and root would never come."""
    table = tmp_path / "abft.bin"
    table.write_bytes(bytes([11, 0, 0, 0]) + bytes.fromhex(MAC.replace(":", "")))
    disk = make_disk(tmp_path / "root.img")
    with Vblade(nas, 11, 0, "tap0", disk):
        vm = VM(
            nas,
            tmp_path / "console.log",
            kernel=kernel.image,
            initrd=initramfs("systemd"),
            append="root=LABEL=aoeroot",
            extra=["-acpitable", f"sig=aBFT,rev=1,oem_id=FENSYS,oem_table_id=iPXE,data={table}"],
        )
        with vm:
            match = vm.wait_for(MARKER, 300)
            vm.wait_exit(60)
    console = vm.text()
    assert match, f"no root over AoE; console tail:\n{console[-3000:]}"
    assert "ACPI: aBFT" in console and "rd.aoe" not in console and "BOOTIF" not in console
