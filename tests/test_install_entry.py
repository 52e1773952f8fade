"""install-entry on a prepared installed root: files written, entries fixed, idempotent."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import aoeboot

ENTRY = "title Fedora\nversion {kver}\nlinux /vmlinuz-{kver}\noptions {options}\n"
OPTIONS = "root=UUID=abcd ro rhgb quiet"


def installed_root(
    sysroot: Callable[..., Path], kver: str, initrd: Path, options: str = OPTIONS, **system: Any
) -> Path:
    """One kernel, its initramfs and its entry; /etc/kernel/cmdline the entry's options unless
    `system` (more of the system: the sysroot fixture's keywords) says otherwise."""
    system.setdefault("cmdline", options + "\n")
    entry = ENTRY.format(kver=kver, options=options)
    return sysroot(kver=kver, initramfs=initrd, entries={f"fedora-{kver}.conf": entry}, **system)


def test_install_entry_sets_everything_up_once(sysroot, aoe_initrd):
    kver, initrd = aoe_initrd
    root = installed_root(sysroot, kver, initrd)
    out = aoeboot("install-entry", "--target", "e11.0p1", "--iface", "eth0", "--root", str(root))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "wrote /etc/aoeboot/aoeboot.conf",
        "set the AoE options in /etc/kernel/cmdline",
        "wrote /etc/dracut.conf.d/90-aoeboot.conf",
        "enabled aoeboot-watch.service",
        f"set the AoE options in boot/loader/entries/fedora-{kver}.conf",
    ]
    watch = root / "etc/systemd/system/multi-user.target.wants/aoeboot-watch.service"
    assert os.readlink(watch) == "/usr/lib/systemd/system/aoeboot-watch.service"
    assert (root / "etc/kernel/cmdline").read_text() == (
        "ro rhgb quiet root=/dev/etherd/e11.0p1 rd.aoe.iface=eth0\n"
    )
    assert 'add_dracutmodules+=" aoe "' in (root / "etc/dracut.conf.d/90-aoeboot.conf").read_text()
    assert "target = e11.0p1" in (root / "etc/aoeboot/aoeboot.conf").read_text()
    entry = (root / "boot/loader/entries" / f"fedora-{kver}.conf").read_text()
    assert entry == ENTRY.format(
        kver=kver, options="ro rhgb quiet root=/dev/etherd/e11.0p1 rd.aoe.iface=eth0"
    )

    again = aoeboot("install-entry", "--target", "e11.0p1", "--root", str(root), "--json")
    assert again.returncode == 0, again.stderr
    assert again.stdout.replace(" ", "").replace("\n", "") == '{"changed":false,"changes":[]}'


def test_install_entry_without_target_on_a_root_not_on_aoe(sysroot):
    root = sysroot()
    out = aoeboot("install-entry", "--root", str(root))
    assert out.returncode == 2
    assert out.stderr.strip() == (
        f"aoeboot: {root} is not mounted from an AoE disk "
        "(name the root partition with --target eX.YpN)"
    )
    assert list(root.iterdir()) == []  # nothing written


@pytest.mark.parametrize(
    "target, message",
    [("e65535.0p1", "shelf 65535 out of range"), ("sda1", "invalid AoE target 'sda1'")],
)
def test_bad_target(tmp_path, target, message):
    out = aoeboot("install-entry", "--target", target, "--root", str(tmp_path))
    assert out.returncode == 2 and message in out.stderr
    assert list(tmp_path.iterdir()) == []


FSTAB = (
    "UUID=9a1e0c52-3a7b-4f64-a1c2-5d6e7f809102 / btrfs subvol=root,compress=zstd:1 0 0\n"
    "UUID=0b9c8d7e-1f2a-4b3c-8d4e-5f6a7b8c9d0e /boot ext4 defaults 1 2\n"
)
ROOT_MOUNT = "rootfstype=btrfs rootflags=subvol=root,compress=zstd:1"


def fedora_root(sysroot: Callable[..., Path], kver: str, initrd: Path) -> Path:
    """The installer's layout: fstab by UUID with btrfs subvolume root, no /etc/kernel/cmdline
    yet, grub's /etc/default/grub."""
    return installed_root(
        sysroot,
        kver,
        initrd,
        cmdline=None,
        fstab=FSTAB,
        grub='GRUB_TIMEOUT=5\nGRUB_CMDLINE_LINUX="rhgb quiet"\n',
    )


def test_root_mount_options_come_from_the_installed_systems_fstab(sysroot, aoe_initrd):
    """Never from the installer's own /proc/cmdline: switch-root needs subvol=root."""
    kver, initrd = aoe_initrd
    root = fedora_root(sysroot, kver, initrd)
    out = aoeboot("install-entry", "--target", "e11.0p3", "--root", str(root))
    assert out.returncode == 0, out.stderr
    ours = f"root=/dev/etherd/e11.0p3 {ROOT_MOUNT}"
    # a new /etc/kernel/cmdline as grub2-mkconfig writes it: with GRUB_CMDLINE_LINUX's options
    assert (root / "etc/kernel/cmdline").read_text() == f"ro rhgb quiet {ours}\n"
    entry = (root / "boot/loader/entries" / f"fedora-{kver}.conf").read_text()
    assert f"options ro rhgb quiet {ours}\n" in entry
    assert (root / "etc/default/grub").read_text() == (
        f'GRUB_TIMEOUT=5\nGRUB_CMDLINE_LINUX="rhgb quiet {ours}"\n'
    )
    assert "set the AoE options in GRUB_CMDLINE_LINUX of /etc/default/grub" in out.stdout
    again = aoeboot("install-entry", "--target", "e11.0p3", "--root", str(root))
    assert again.stdout.strip() == "nothing to change: already set up to boot from AoE"


def test_usr_lib_kernel_cmdline_is_the_base_without_etc_kernel_cmdline(sysroot, aoe_initrd):
    kver, initrd = aoe_initrd
    root = fedora_root(sysroot, kver, initrd)
    (root / "usr/lib/kernel").mkdir(parents=True)
    (root / "usr/lib/kernel/cmdline").write_text("ro console=ttyS0\n")
    assert aoeboot("install-entry", "--target", "e11.0p3", "--root", str(root)).returncode == 0
    assert (root / "etc/kernel/cmdline").read_text() == (
        f"ro console=ttyS0 root=/dev/etherd/e11.0p3 {ROOT_MOUNT}\n"
    )


def test_publishing_configured_enables_the_retry_timer(sysroot, aoe_initrd):
    kver, initrd = aoe_initrd
    root = installed_root(sysroot, kver, initrd, config="[publish]\ndestination = /srv/tftp\n")
    out = aoeboot("install-entry", "--target", "e11.0p1", "--root", str(root))
    assert "enabled aoeboot-publish.timer" in out.stdout, out.stderr
    link = root / "etc/systemd/system/timers.target.wants/aoeboot-publish.timer"
    assert str(link.readlink()) == "/usr/lib/systemd/system/aoeboot-publish.timer"


@pytest.mark.parametrize(
    "breakage, message",
    [
        (
            lambda root: (root / "etc/fstab").write_text("UUID=x /boot ext4 defaults 1 2\n"),
            "etc/fstab has no line for /",
        ),
        (
            lambda root: (root / "etc/default/grub").write_text('GRUB_CMDLINE_LINUX="quiet\n'),
            "etc/default/grub:1: unterminated quote in GRUB_CMDLINE_LINUX",
        ),
    ],
)
def test_bad_system_files_are_one_line_errors(sysroot, aoe_initrd, breakage, message):
    kver, initrd = aoe_initrd
    root = fedora_root(sysroot, kver, initrd)
    breakage(root)
    out = aoeboot("install-entry", "--target", "e11.0p3", "--root", str(root))
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    assert message in out.stderr
    assert not (root / "etc/aoeboot").exists()  # stopped before writing anything


@pytest.mark.dracut
def test_dropin_asks_for_the_module_only_while_it_is_installed(tmp_path):
    """The drop-in install-entry writes stays after the package is gone: it must not fail every
    later dracut run (naming a missing module does). Real dracut, with and without 59aoe."""
    from aoeboot.bootfiles import DRACUT_DROPIN_TEXT
    from aoelab import dracutdir
    from tests.helpers import require_programs, require_root

    require_root()
    require_programs("dracut", "lsinitrd")
    confdir = tmp_path / "conf.d"
    confdir.mkdir()
    (confdir / "90-aoeboot.conf").write_text(DRACUT_DROPIN_TEXT)
    with_module = dracutdir.overlay(tmp_path / "with")
    without = dracutdir.overlay(tmp_path / "without")
    (without / "modules.d/59aoe").unlink()  # the package removed
    for base, has_aoe in ((with_module, True), (without, False)):
        image = tmp_path / f"{has_aoe}.img"
        proc = subprocess.run(
            [
                "dracut",
                "--force",
                "--no-kernel",
                "--no-hostonly",
                "--conf",
                "/dev/null",
                "--confdir",
                str(confdir),
                "-m",
                "base",
                "--no-compress",
                str(image),
            ],
            env=dracutdir.env(base),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert ("parse-aoe.sh" in "".join(cpio_names(image))) is has_aoe


def cpio_names(image: Path) -> list[str]:
    from aoeboot import cpio

    return cpio.names(image)


def test_records_the_servers_the_driver_uses_and_the_initramfs_carries_them(sysroot, aoe_initrd):
    """In the installer the disk is on AoE already: the servers come from the driver (its
    debugfs file lists each, here two), and the image the dracut module builds carries them."""
    kver, initrd = aoe_initrd
    root = installed_root(
        sysroot,
        kver,
        initrd,
        files={
            "sys/block/etherd!e11.0/mac": "525400aa0001\n",
            "sys/kernel/debug/aoe/e11.0": (
                "rttavg: 2 rttdev: 1\nfalloc: 1\nffree: 0000000000000000\n525400aa0001:0:16:16\n"
                "\tssthresh:8\n\ttaint:0\n\teth0\nfalloc: 1\nffree: 0000000000000000\n"
                "525400aa0002:0:16:16\n\tssthresh:8\n\ttaint:0\n\teth1\n"
            ),
        },
    )
    (root / "sys/module/aoe").mkdir(parents=True)
    out = aoeboot("install-entry", "--target", "e11.0p1", "--root", str(root))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == (
        "recorded 52:54:00:aa:00:01, 52:54:00:aa:00:02 as the server(s) of e11.0"
    )
    config = (root / "etc/aoeboot/aoeboot.conf").read_text()
    assert "servers = 52:54:00:aa:00:01 52:54:00:aa:00:02\n" in config
    # the kernel command line stays as it was; only the image carries them (for its report)
    assert "rd.aoe.server" not in (root / "etc/kernel/cmdline").read_text()
    baked = aoeboot("cmdline", "--initramfs", "--root", str(root))
    assert baked.stdout.split()[-2:] == [
        "rd.aoe=1",
        "rd.aoe.server=52:54:00:aa:00:01,52:54:00:aa:00:02",
    ], baked.stdout
    # the driver lists them in the order they answered: a new order changes nothing
    (root / "sys/kernel/debug/aoe/e11.0").write_text("525400aa0002:0:16:16\n525400aa0001:0:1:16\n")
    again = aoeboot("install-entry", "--target", "e11.0p1", "--root", str(root))
    assert again.stdout.strip() == "nothing to change: already set up to boot from AoE"


def test_server_named_by_hand_wins_and_bad_ones_are_one_line(sysroot, aoe_initrd):
    kver, initrd = aoe_initrd
    root = installed_root(sysroot, kver, initrd, config="[boot]\nservers = 52:54:00:aa:00:01\n")
    out = aoeboot(
        "install-entry", "--target", "e11.0p1", "--server", "02-AA-00-00-00-09", "--root", str(root)
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == (
        "recorded 02:aa:00:00:00:09 as the server(s) of e11.0 (was 52:54:00:aa:00:01)"
    )
    assert "servers = 02:aa:00:00:00:09\n" in (root / "etc/aoeboot/aoeboot.conf").read_text()
    bad = aoeboot("install-entry", "--target", "e11.0p1", "--server", "nas", "--root", str(root))
    assert bad.returncode == 2 and bad.stderr.startswith("aoeboot: invalid MAC address 'nas'")
    assert len(bad.stderr.splitlines()) == 1


def test_without_the_driver_nothing_is_recorded_and_it_says_so(sysroot, aoe_initrd):
    kver, initrd = aoe_initrd
    root = installed_root(sysroot, kver, initrd)
    out = aoeboot("install-entry", "--target", "e11.0p1", "--root", str(root))
    assert out.returncode == 0, out.stderr
    assert "cannot tell which NAS serves e11.0" in out.stderr
    assert "servers" not in (root / "etc/aoeboot/aoeboot.conf").read_text()


# ---- the NetworkManager drop-in (no kernel here: nothing for dracut to build) ----

NM_DROPIN = "etc/NetworkManager/conf.d/90-aoeboot.conf"
NM_TEXT = """\
# Written by `aoeboot install-entry` for the NICs of the AoE root disk, matched by their
# permanent MAC: the disk waits for ever while their link is down or once their MAC
# changes. `aoeboot status` says what NetworkManager can still do to them. A later file
# in this directory overrides this one.

[device-aoeboot]
match-device={match}
# managed even when a udev rule says NM_UNMANAGED=1: unmanaging takes the link down
managed=1

[connection-aoeboot]
match-device={match}
# the MAC the NAS knows, whatever another drop-in's default; Wake-on-LAN (magic packet)
# where the NIC has it, so suspend leaves the link up; the link up at poweroff
ethernet.cloned-mac-address=preserve
ethernet.wake-on-lan=64
connection.down-on-poweroff=0
"""


def nm_root(sysroot: Callable[..., Path], nics: dict[str, str]) -> Path:
    """An installed root with NetworkManager and the installer's /sys/class/net (Anaconda
    bind-mounts /sys): `nics` maps names to MACs."""
    return sysroot(nics=nics, files={"usr/sbin/NetworkManager": ""})


def test_networkmanager_dropin_names_every_aoe_nic_by_mac_once(sysroot):
    root = nm_root(
        sysroot,
        {"eth0": "52:54:00:12:34:56", "eth1": "52:54:00:00:00:09", "wlan0": "02:00:00:00:00:01"},
    )
    out = aoeboot(
        "install-entry",
        "--target",
        "e11.0p1",
        "--iface",
        "eth0",
        "--iface",
        "52-54-00-00-00-09",
        "--root",
        str(root),
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == (
        "wrote /etc/NetworkManager/conf.d/90-aoeboot.conf for eth0 (52:54:00:12:34:56), "
        "eth1 (52:54:00:00:00:09)"
    )
    dropin = root / NM_DROPIN
    assert dropin.read_text() == NM_TEXT.format(match="mac:52:54:00:12:34:56,mac:52:54:00:00:00:09")
    assert dropin.stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in dropin.parent.iterdir()) == ["90-aoeboot.conf"]  # no temp
    # the config keeps what was given (a name stays a name): the drop-in has the MAC
    config = (root / "etc/aoeboot/aoeboot.conf").read_text()
    assert "interfaces = eth0 52:54:00:00:00:09\n" in config

    before = dropin.stat().st_mtime_ns
    again = aoeboot("install-entry", "--target", "e11.0p1", "--root", str(root))
    assert again.stdout.strip() == "nothing to change: already set up to boot from AoE"
    assert dropin.stat().st_mtime_ns == before


def test_networkmanager_dropin_follows_the_nics(sysroot):
    root = nm_root(sysroot, {"eth0": "52:54:00:12:34:56", "eth1": "52:54:00:00:00:09"})
    aoeboot("install-entry", "--target", "e11.0p1", "--iface", "eth0", "--root", str(root))
    out = aoeboot("install-entry", "--target", "e11.0p1", "--iface", "eth1", "--root", str(root))
    assert "wrote /etc/NetworkManager/conf.d/90-aoeboot.conf for eth1 (52:54:00:00:00:09)" in (
        out.stdout.splitlines()
    ), out.stdout
    assert (root / NM_DROPIN).read_text() == NM_TEXT.format(match="mac:52:54:00:00:00:09")


def test_networkmanager_dropin_from_the_nic_the_driver_uses(sysroot):
    """No --iface: the NIC through which the aoe driver reaches the target (the installer)."""
    root = nm_root(sysroot, {"enp1s0": "52:54:00:12:34:56", "enp2s0": "52:54:00:00:00:09"})
    disk = root / "sys/block/etherd!e11.0"
    disk.mkdir(parents=True)
    (root / "sys/module/aoe").mkdir(parents=True)
    (disk / "netif").write_text("enp1s0\n")
    (disk / "mac").write_text("525400aa0001\n")
    out = aoeboot("install-entry", "--target", "e11.0p1", "--root", str(root))
    assert out.returncode == 0, out.stderr
    assert (root / NM_DROPIN).read_text() == NM_TEXT.format(match="mac:52:54:00:12:34:56")


def test_no_networkmanager_drop_in_without_networkmanager_or_a_mac(sysroot):
    root = nm_root(sysroot, {"eth0": "52:54:00:12:34:56"})
    out = aoeboot("install-entry", "--target", "e11.0p1", "--iface", "eth7", "--root", str(root))
    assert out.returncode == 0, out.stderr
    assert "no interface here is called eth7: the NetworkManager drop-in cannot name its MAC" in (
        out.stderr
    )
    assert "cannot tell which NIC carries e11.0: no NetworkManager drop-in written" in out.stderr
    assert not (root / "etc/NetworkManager").exists()

    (root / "usr/sbin/NetworkManager").unlink()  # NetworkManager not installed: nothing for it
    out = aoeboot("install-entry", "--target", "e11.0p1", "--iface", "eth0", "--root", str(root))
    assert out.returncode == 0 and "NetworkManager" not in out.stdout + out.stderr
    assert not (root / "etc/NetworkManager").exists()


@pytest.mark.parametrize(
    "servers, deadsecs",
    [
        (("52:54:00:12:34:56",), None),
        (("52:54:00:12:34:56", "52:54:00:12:34:57"), "rd.aoe.deadsecs=2147483647"),
    ],
)
def test_a_nas_with_two_ports_gets_a_deadsecs_that_leaves_a_dead_port(
    sysroot, monkeypatch, servers, deadsecs
):
    """One server: the module's own 0 (wait for the NAS for ever). Two: a deadsecs the driver
    needs to move frames off a port that stopped answering, which never fails the disk."""
    from aoeboot import initramfs
    from tests.test_odd_input import bare_root, cli, fake_dracut

    root = bare_root(sysroot)
    monkeypatch.setattr(initramfs, "run", fake_dracut([]))
    args = [word for server in servers for word in ("--server", server)]
    result = cli("install-entry", "--target", "e11.0p1", *args, "--root", str(root))
    assert result.exit_code == 0, result.output
    words = (root / "etc/kernel/cmdline").read_text().split()
    assert [w for w in words if w.startswith("rd.aoe.deadsecs=")] == (
        [deadsecs] if deadsecs else []
    ), words
    image = next((root / "boot").glob("initramfs-*.img"))
    baked = initramfs.baked_options(image).options
    assert (deadsecs in baked) if deadsecs else not any("deadsecs" in w for w in baked), baked


SERVER_FSTAB = (
    "/dev/mapper/fedora-root / xfs defaults 0 0\n"
    "UUID=0b9c8d7e-1f2a-4b3c-8d4e-5f6a7b8c9d0e /boot xfs defaults 0 0\n"
)
SERVER_ENTRY = "root=/dev/mapper/fedora-root ro rd.lvm.lv=fedora/root"


def server_root(
    sysroot: Callable[..., Path],
    kver: str,
    initrd: Path,
    grub: str = "rd.lvm.lv=fedora/root",
    entry: str = SERVER_ENTRY,
) -> Path:
    """Fedora Server's layout as the installer leaves it (LVM, xfs), prepared where its stack
    is not assembled: no /etc/kernel/cmdline yet, the entry grub2-mkconfig's options."""
    return installed_root(
        sysroot,
        kver,
        initrd,
        options=entry,
        cmdline=None,
        fstab=SERVER_FSTAB,
        grub=f'GRUB_CMDLINE_LINUX="{grub}"\n',
    )


def test_lvm_root_stays_the_logical_volume_and_aoe_is_wanted(sysroot, aoe_initrd):
    kver, initrd = aoe_initrd
    root = server_root(sysroot, kver, initrd)
    out = aoeboot("install-entry", "--target", "e11.0p3", "--iface", "eth0", "--root", str(root))
    assert out.returncode == 0, out.stderr
    ours = "root=/dev/mapper/fedora-root rootfstype=xfs rd.aoe=1 rd.aoe.iface=eth0"
    # rd.lvm.lv= came from GRUB_CMDLINE_LINUX, as grub2-mkconfig would have written it
    assert (root / "etc/kernel/cmdline").read_text() == f"ro rd.lvm.lv=fedora/root {ours}\n"
    entry = (root / "boot/loader/entries" / f"fedora-{kver}.conf").read_text()
    assert f"options ro rd.lvm.lv=fedora/root {ours}\n" in entry
    assert (root / "etc/default/grub").read_text() == (
        f'GRUB_CMDLINE_LINUX="rd.lvm.lv=fedora/root {ours}"\n'
    )
    again = aoeboot("install-entry", "--target", "e11.0p3", "--root", str(root))
    assert again.stdout.strip() == "nothing to change: already set up to boot from AoE"


def test_the_lvm_option_is_added_where_it_is_missing_and_others_are_kept(sysroot, aoe_initrd):
    kver, initrd = aoe_initrd
    root = server_root(
        sysroot,
        kver,
        initrd,
        grub="rhgb",
        entry="root=/dev/etherd/e11.0p3 ro rd.lvm.lv=fedora/swap",
    )
    out = aoeboot("install-entry", "--target", "e11.0p3", "--root", str(root))
    assert out.returncode == 0, out.stderr
    ours = "root=/dev/mapper/fedora-root rootfstype=xfs rd.lvm.lv=fedora/root rd.aoe=1"
    assert (root / "etc/kernel/cmdline").read_text() == f"ro rhgb {ours}\n"
    entry = (root / "boot/loader/entries" / f"fedora-{kver}.conf").read_text()
    # root= named the PV (an older aoeboot wrote that): it is the LV again; the swap LV stays
    assert f"options ro rd.lvm.lv=fedora/swap {ours}\n" in entry


def test_an_md_root_not_assembled_here_is_an_error_and_nothing_is_written(sysroot, aoe_initrd):
    kver, initrd = aoe_initrd
    root = server_root(sysroot, kver, initrd)
    (root / "etc/fstab").write_text("/dev/md/root / xfs defaults 0 0\n")
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    out = aoeboot("install-entry", "--target", "e11.0p3", "--root", str(root))
    assert out.returncode == 2
    assert "/ is on /dev/md/root, an md array not assembled here" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    after = {p: p.read_bytes() for p in root.rglob("*") if p.is_file() and p.name != "lock"}
    assert after == before
