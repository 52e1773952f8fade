"""Netboot end to end: aoeboot publishes into the NAS's TFTP root, dnsmasq (configured with what
`aoeboot nas-config --format dnsmasq` prints) serves DHCP and TFTP, qemu's iPXE ROM boots the
published kernel and initramfs, and root comes over AoE. Then a second kernel, then a corrupt
one."""

from __future__ import annotations

from pathlib import Path

import pytest

from aoeboot import publish
from aoeboot.config import BootConfig, Config, PublishConfig
from aoeboot.target import Target
from aoelab.disk import MARKER, make_disk
from aoelab.dnsmasq import Dnsmasq
from aoelab.vblade import Vblade
from aoelab.vm import CONSOLE_ARGS, VM
from tests.helpers import aoeboot, require_programs

pytestmark = [pytest.mark.vm, pytest.mark.dracut]

MAC = "52:54:00:12:34:56"
HOST = MAC.replace(":", "-")
OPTIONS = (CONSOLE_ARGS, "root=/dev/etherd/e11.0p1", f"rd.aoe.iface={MAC}")


def netboot(nas, tmp_path, tftp: Path, name: str) -> str:
    fragment = aoeboot("nas-config", "--mac", MAC, "--target", "e11.0", "--format", "dnsmasq")
    assert fragment.returncode == 0, fragment.stderr
    disk = make_disk(tmp_path / f"root-{name}.img")
    work = tmp_path / name
    work.mkdir()
    with Dnsmasq(nas, "tap0", tftp, fragment.stdout, work), Vblade(nas, 11, 0, "tap0", disk):
        vm = VM(nas, work / "console.log", netboot=True, mac=MAC)
        with vm:
            match = vm.wait_for(MARKER, 300)
            vm.wait_exit(60)
    assert match, f"{name}: no root over AoE; console tail:\n{vm.text()[-3000:]}"
    return vm.text()


def test_ipxe_boots_published_kernels_and_falls_back(nas, tmp_path, kernel, initramfs):
    require_programs("dnsmasq")
    tftp = tmp_path / "tftp"
    tftp.mkdir()  # the NAS's TFTP root: publish never makes a destination
    config = Config(BootConfig(Target(11, 0, 1), (MAC,)), PublishConfig(str(tftp)))
    root = tmp_path / "root"
    publish.after_add(
        root=root,
        config=config,
        kver="6.1.0-56-amd64",
        kernel=kernel.image,
        initrd=initramfs("systemd"),
        options=OPTIONS + ("aoeboot.test=first",),
    )
    assert publish.read_state(root)["state"] == "done"
    console = netboot(nas, tmp_path, tftp, "first")
    assert "aoeboot.test=first" in console
    # iPXE attached the disk (the DHCP root-path) but under BIOS keeps its aBFT in base memory,
    # out of the ACPI tables Linux reads (under UEFI it is one: test_netboot_uefi)
    assert "Registered SAN device 0x80" in console and "ACPI: RSDT" in console
    assert "ACPI: aBFT" not in console

    # a newer kernel (same image, new initramfs contents) becomes the default
    second = initramfs("shell")
    publish.after_add(
        root=root,
        config=config,
        kver="6.1.0-57-amd64",
        kernel=kernel.image,
        initrd=second,
        options=OPTIONS + ("aoeboot.test=second",),
    )
    assert publish.read_state(root)["kernels"] == ["6.1.0-57-amd64", "6.1.0-56-amd64"]
    console = netboot(nas, tmp_path, tftp, "second")
    assert "aoeboot.test=second" in console

    # the newest kernel's file corrupted on the NAS (its header overwritten, size kept: a tiny
    # file would pass iPXE's PXE-image probe and run): iPXE falls back to the previous kernel
    newest = next((tftp / HOST).glob("vmlinuz-6.1.0-57-amd64-*"))
    with open(newest, "r+b") as handle:
        handle.write(b"\0" * 65536)
    console = netboot(nas, tmp_path, tftp, "fallback")
    assert "aoeboot.test=first" in console and "aoeboot.test=second" not in console
