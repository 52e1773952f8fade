"""Root on AoE boots, in a real VM, with an initramfs our dracut module built."""

from __future__ import annotations

import threading

import pytest

from aoelab.disk import CLEAN, MARKER, fsck_clean, make_disk
from aoelab.dnsmasq import Dnsmasq
from aoelab.vblade import Vblade
from aoelab.vm import VM, printk_time
from tests.helpers import aoeboot, require_programs

pytestmark = [pytest.mark.vm, pytest.mark.dracut]

BOOT_TIMEOUT = 240  # TCG on a loaded 2-core machine; a good boot takes 15-20 s
ROOT_LINE = MARKER + r" uptime=(?P<up>[0-9.]+) root=(?P<root>\S+)"


def boot(nas, tmp_path, kernel, initrd, append, nic="virtio-net-pci", nas_delay=0.0):
    """Boot once with vblade serving a fresh root disk as e11.0 (optionally starting late)."""
    disk = make_disk(tmp_path / "root.img")
    blades = []

    def start_nas() -> None:
        blades.append(Vblade(nas, 11, 0, "tap0", disk))

    vm = VM(
        nas, tmp_path / "console.log", kernel=kernel.image, initrd=initrd, append=append, nic=nic
    )
    timer = threading.Timer(nas_delay, start_nas)
    try:
        vm.start()
        timer.start()
        match = vm.wait_for(ROOT_LINE, BOOT_TIMEOUT)
        exit_code = vm.wait_exit(60)
    finally:
        timer.cancel()
        vm.stop()
        for blade in blades:
            blade.stop()
    return match, exit_code, vm.text(), disk


@pytest.mark.parametrize(
    "flavour, root",
    [
        ("systemd", "/dev/etherd/e11.0p1"),
        ("systemd", "aoe:e11.0p1"),
        ("shell", "/dev/etherd/e11.0p1"),
        ("shell", "aoe:e11.0p1"),
    ],
)
def test_root_on_aoe_boots_and_shuts_down_clean(nas, tmp_path, kernel, initramfs, flavour, root):
    match, exit_code, console, disk = boot(
        nas, tmp_path, kernel, initramfs(flavour), f"root={root}"
    )
    assert match, f"root never mounted; console tail:\n{console[-3000:]}"
    assert match.group("root") == "/dev/etherd/e11.0p1"
    assert CLEAN in console  # / remounted read-only over AoE before power-off
    assert exit_code == 0
    for bad in ("I/O error", "EXT4-fs error", "Buffer I/O"):
        assert bad not in console
    check = fsck_clean(disk)
    assert check.returncode == 0, check.stdout


def test_root_by_label_on_aoe(nas, tmp_path, kernel, initramfs):
    """root=LABEL= needs the by-label link that stock udev rules do not make for etherd."""
    match, _, console, _ = boot(
        nas,
        tmp_path,
        kernel,
        initramfs("systemd"),
        "root=LABEL=aoeroot rd.aoe.iface=52:54:00:12:34:56",
    )
    assert match, f"root never mounted; console tail:\n{console[-3000:]}"
    assert match.group("root") in ("/dev/etherd/e11.0p1", "/dev/disk/by-label/aoeroot")


def test_root_dhcp_takes_the_aoe_root_path_from_the_nas_dhcp(nas, tmp_path, kernel, initramfs):
    """root=dhcp: the NAS's DHCP (dnsmasq, configured with what nas-config prints) hands the
    initramfs's DHCP client root-path aoe:e11.0p1, and root comes over AoE from there."""
    require_programs("dnsmasq", "dhclient")
    fragment = aoeboot(
        "nas-config", "--mac", "52:54:00:12:34:56", "--target", "e11.0p1", "--format", "dnsmasq"
    )
    assert fragment.returncode == 0, fragment.stderr
    (tmp_path / "tftp").mkdir()
    disk = make_disk(tmp_path / "root.img")
    with (
        Dnsmasq(nas, "tap0", tmp_path / "tftp", fragment.stdout, tmp_path),
        Vblade(nas, 11, 0, "tap0", disk),
    ):
        vm = VM(
            nas,
            tmp_path / "console.log",
            kernel=kernel.image,
            initrd=initramfs("systemd-dhcp"),
            append="root=dhcp",
        )
        with vm:
            match = vm.wait_for(ROOT_LINE, BOOT_TIMEOUT)
            vm.wait_exit(60)
    console = vm.text()
    assert match, f"root never mounted; console tail:\n{console[-3000:]}"
    assert match.group("root") == "/dev/etherd/e11.0p1"
    assert "option: 17 root-path  aoe:e11.0p1" in (tmp_path / "dnsmasq.log").read_text()  # sent
    assert CLEAN in console


def test_nas_that_starts_20_s_late_still_boots(nas, tmp_path, kernel, initramfs):
    match, _, console, _ = boot(
        nas, tmp_path, kernel, initramfs("systemd"), "root=aoe:e11.0p1", nas_delay=20
    )
    assert match, f"root never mounted; console tail:\n{console[-3000:]}"
    assert float(match.group("up")) > 15  # it really waited for the NAS


def test_no_nas_reports_and_takes_the_emergency_path(nas, tmp_path, kernel, initramfs):
    vm = VM(
        nas,
        tmp_path / "console.log",
        kernel=kernel.image,
        initrd=initramfs("systemd"),
        append="root=aoe:e11.0p1 rd.aoe.timeout=15",
    )
    with vm:
        report = vm.wait_for(r"end of AoE report", BOOT_TIMEOUT)
        exit_code = vm.wait_exit(60)
    console = vm.text()
    assert report, f"no AoE report; console tail:\n{console[-3000:]}"
    assert "did not appear within 15 s" in console
    assert "no AoE target answered" in console
    assert "interface " in console and "carrier 1" in console  # the NIC was up: it is the NAS
    assert MARKER not in console
    assert exit_code == 0  # rd.emergency=poweroff: the emergency path ran to its end
    gave_up = printk_time(r"AoE report", console)
    aoe_loaded = printk_time(r"aoe: AoE v\d+ initialised", console)
    assert gave_up is not None and aoe_loaded is not None
    assert gave_up - aoe_loaded < 15 + 10  # rd.aoe.timeout counts from the cmdline hook


def test_root_by_uuid_with_aoe_wanted_reports_when_nothing_came(nas, tmp_path, kernel, initramfs):
    """Options a boot loader tool rewrote: root=UUID=... and no rd.aoe.* but the rd.aoe=1 an
    image of an AoE host carries itself. No NAS: the emergency path must say what AoE saw."""
    vm = VM(
        nas,
        tmp_path / "console.log",
        kernel=kernel.image,
        initrd=initramfs("systemd"),
        append="root=UUID=0b0e0c0a-0000-4000-8000-00000000f00d rd.aoe=1 rd.timeout=20",
    )
    with vm:
        report = vm.wait_for(r"end of AoE report", BOOT_TIMEOUT)
        vm.wait_exit(60)
    console = vm.text()
    assert report, f"no AoE report; console tail:\n{console[-3000:]}"
    assert "aoe: root UUID=0b0e0c0a-0000-4000-8000-00000000f00d (AoE wanted: rd.aoe)" in console
    assert "aoe: driver loaded" in console and "no AoE target answered" in console
    assert console.count("---- AoE report ----") == 1  # once, whichever path got there


E1000_BOOTS = 3  # bench/e1000.py has the figures; three boots check the bound


def test_e1000_disk_appears_within_2_s_of_link_up(nas, tmp_path, kernel, initramfs):
    """e1000 raises carrier seconds after `aoe` loaded; the disk must follow the link at once."""
    delays = []
    for run in range(E1000_BOOTS):
        run_dir = tmp_path / f"run{run}"
        run_dir.mkdir()
        match, _, console, _ = boot(
            nas, run_dir, kernel, initramfs("systemd"), "root=/dev/etherd/e11.0p1", nic="e1000"
        )
        assert match, f"boot {run}: root never mounted; console tail:\n{console[-3000:]}"
        link_up = printk_time(r"e1000: \S+ NIC Link is Up", console)
        disk = printk_time(r"etherd/e11\.0: p1", console)
        assert link_up is not None and disk is not None, console[-3000:]
        delays.append(disk - link_up)
    print(f"e1000 link-up to disk: {', '.join(f'{d:.2f}' for d in delays)} s")
    assert max(delays) <= 2.0, delays
