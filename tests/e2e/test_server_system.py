"""Fedora Server's layout, installed and booted over AoE: / on LV fedora/root (xfs) whose PV is
the AoE partition e11.0p3, /boot xfs on e11.0p2 (aoelab.disklayout.SERVER).

As a user gets there (aoelab.installed.install_box): install-entry from the installer's shell,
with the stack not assembled where it runs (this machine has no device-mapper): it is read from
fstab's /dev/mapper/fedora-root. Then one boot, with the options grub2-mkconfig writes, which
know nothing of AoE: the initramfs brings AoE up from what it carries, and dracut's lvm module
must find the PV on it. Inside, where the stack is assembled and walked in sysfs: status, and
the kernel-install run a kernel update makes; after the poweroff, xfs_repair -n.
"""

from __future__ import annotations

import json

import pytest

from aoelab import disklayout, fsck, installed, sysimage
from aoelab.installed import Box
from tests.helpers import require_programs, require_root

pytestmark = [pytest.mark.vm, pytest.mark.dracut]

UNAWARE_OPTIONS = disklayout.SERVER_CMDLINE  # root=/dev/mapper/fedora-root ro rd.lvm.lv=...
LV = "/dev/mapper/fedora-root"
ENTRY_IMAGE = "$(sed -n 's/^initrd *//p' /boot/loader/entries/*$(uname -r).conf | tail -n1)"

PROBE = {
    "mounts": ["findmnt", "-rn", "-o", "TARGET,SOURCE,FSTYPE"],
    "stack": ["lsblk", "-rn", "-o", "NAME,TYPE,FSTYPE"],
    "status": ["aoeboot", "status", "--json"],
    # what a kernel update runs, on the running box: options from the stack as sysfs shows it
    "kernel-install": ["sh", "-c", "kernel-install add $(uname -r) /boot/vmlinuz-$(uname -r)"],
    "entry": ["sh", "-c", "grep -h '^options' /boot/loader/entries/*$(uname -r).conf"],
    "baked": ["sh", "-c", f"lsinitrd -f etc/cmdline.d/50-aoeboot.conf /boot{ENTRY_IMAGE}"],
    "status-after": ["aoeboot", "status", "--json"],
    "failed": ["systemctl", "--failed", "--no-legend", "--plain"],
}


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Box:
    require_root()
    require_programs(
        "mmdebstrap", "qemu-system-x86_64", "vblade", "lvm", "mkfs.xfs", "xfs_repair", "dnsmasq"
    )
    work = tmp_path_factory.mktemp("server")
    return installed.install_box(
        work,
        layout=disklayout.SERVER,
        install_args=("--server", installed.NAS_MAC),
        prepare=lambda target: installed.write_probe(target, PROBE),
    )


def test_install_entry_keeps_root_on_the_logical_volume(box, tmp_path):
    with sysimage.mounted(box.disk, read_only=True) as target:
        cmdline = (target / "etc/kernel/cmdline").read_text().split()
        entry = installed.read_entry(target, box.kver, tmp_path)
    for options in (cmdline, entry.options.split()):
        assert f"root={LV}" in options and "rd.lvm.lv=fedora/root" in options, options
        assert "rd.aoe=1" in options and "rootfstype=xfs" in options, options
        assert f"root=/dev/etherd/{installed.TARGET}" not in options, options


def test_server_box_boots_with_options_that_know_nothing_of_aoe(box, tmp_path):
    with sysimage.mounted(box.disk, read_only=True) as target:
        entry = installed.read_entry(target, box.kver, tmp_path)
    result = installed.boot(box, tmp_path / "boot", entry=entry, options=UNAWARE_OPTIONS)
    console = result.console
    assert result.done, f"the probe never ran:\n{console[-5000:]}"
    steps = result.steps
    mounts = {line.split()[0]: line.split()[1:] for line in steps["mounts"].out.splitlines()}
    assert mounts["/"] == [LV, "xfs"], mounts
    assert mounts["/boot"] == [f"/dev/etherd/e{installed.SHELF}.0p{installed.BOOT_PART}", "xfs"]
    assert "fedora-root lvm xfs" in steps["stack"].out, steps["stack"].out
    for bad in (
        'Volume group "fedora" not found',
        "Emergency",
        "I/O error",
        "XFS (dm-0): Corruption",
        "Timed out waiting for device",
    ):
        assert bad not in console, bad

    for name in ("status", "status-after"):
        report = json.loads(steps[name].out)
        assert report["next_boot_ok"] is True, report["checks"]
        found = {(c["level"], c["name"], c["message"]) for c in report["checks"]}
        assert (
            "OK",
            "root",
            f"/ is mounted from fedora/root (LVM logical volume) on {installed.TARGET}",
        ) in found, found
        assert not [c for c in found if c[0] == "FAIL"], found
    assert steps["kernel-install"].rc == 0, steps["kernel-install"].out
    entry_options = steps["entry"].out.split()
    baked = steps["baked"].out.split()
    for options in (entry_options, baked):
        assert f"root={LV}" in options and "rd.lvm.lv=fedora/root" in options, options
        assert "rd.aoe=1" in options, options
    assert steps["failed"].out.strip() == "", steps["failed"].out

    assert result.exit_code == 0  # powered off cleanly
    for where, check in fsck.fsck(box.disk).items():
        assert check.clean, f"{where}: {check.output[-2000:]}"
