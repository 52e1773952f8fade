"""A real installed system, laid out as Fedora's installer lays it out, boots over AoE and keeps
booting: Debian 13 (dracut 106, systemd 257, kernel 6.12, NetworkManager), GPT with an ESP,
/boot ext4, / on btrfs subvolume `root`, everything mounted by UUID=, predictable NIC names.

As a user gets there: aoeboot goes into the target as a package; `install-entry` runs from the
installer's shell (aoeboot.pyz under a bare python3); the distribution's `kernel-install add`
runs our plugin (after a model of Fedora's 20-grub.install, which writes the entry); then vblade
serves the disk (e11.0) and a data volume (e11.1, mounted from fstab by UUID=), and a VM boots
the entry's kernel, initramfs and options. A probe service reports from inside once
multi-user.target is reached, and powers off; the file systems must be clean afterwards.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from aoelab import installed, sysimage
from aoelab.installed import Boot, Box
from tests.helpers import require_programs, require_root

pytestmark = [pytest.mark.vm, pytest.mark.dracut]

NIC_RENAMED = re.compile(r"\b(\w+): renamed from eth0\b")


# What the probe asks the running system, in this order.
PROBE = {
    "mounts": ["findmnt", "-rn", "-o", "TARGET,SOURCE,FSTYPE,OPTIONS"],
    "nic": ["sh", "-c", f"for n in /sys/class/net/*; do [ \"$(cat $n/address)\" = {installed.MAC} ]"
            " && echo ${n##*/}; done; cat /sys/module/aoe/parameters/aoe_iflist"],
    # a rename while up, at any time: the aoe driver must be told, or the root disk goes silent
    "rename": ["sh", "-c", "set -e; nic=$(grep -l " + installed.MAC + " /sys/class/net/*/address"
               " | cut -d/ -f5); ip link set dev $nic name aoex0;"
               " udevadm settle; cat /sys/module/aoe/parameters/aoe_iflist;"
               " dd if=/dev/urandom of=/var/tmp/after-rename bs=64k count=32 conv=fsync"
               " status=none; sync; echo 3 > /proc/sys/vm/drop_caches;"
               " timeout 120 sha256sum /var/tmp/after-rename >/dev/null && echo io-ok"],
    # the root disk never gives up on the NAS: set by the initramfs, kept after switch_root,
    # also when the options were rewritten without any rd.aoe.*
    "deadsecs": ["cat", "/sys/module/aoe/parameters/aoe_deadsecs"],
    "status": ["aoeboot", "status", "--json"],
    "failed": ["systemctl", "--failed", "--no-legend", "--plain"],
}


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Box:
    """Install once: the system disk set up to boot from AoE, as a user does it."""
    require_root()
    require_programs("mmdebstrap", "qemu-system-x86_64", "vblade", "btrfs", "mkfs.ext4",
                     "dnsmasq")
    work = tmp_path_factory.mktemp("installed")

    def prepare(target: Path) -> None:
        installed.write_probe(target, PROBE, mounts=[sysimage.DATA_MOUNTPOINT])
        installed.add_rescue(target)

    return installed.install_box(work, prepare=prepare)


@pytest.fixture(scope="module")
def entry(box: Box, tmp_path_factory: pytest.TempPathFactory) -> installed.Entry:
    """The boot entry kernel-install wrote, with its files copied out, as a boot loader reads
    it."""
    with sysimage.mounted(box.disk, read_only=True) as target:
        return installed.read_entry(target, box.kver, tmp_path_factory.mktemp("entry"))


def mounts(step: installed.Step) -> dict[str, dict[str, str]]:
    found = {}
    for line in step.out.splitlines():
        fields = line.split()
        if len(fields) == 4:
            found[fields[0]] = {"source": fields[1], "fstype": fields[2], "options": fields[3]}
    return found


def assert_healthy_boot(result: Boot, box: Box) -> dict[str, installed.Step]:
    console = result.console
    assert result.done, f"the probe never ran (no multi-user.target?):\n{console[-5000:]}"
    steps = result.steps
    found = mounts(steps["mounts"])
    assert found["/"]["source"] == f"/dev/etherd/{installed.TARGET}[/root]", found["/"]
    assert found["/"]["fstype"] == "btrfs" and "subvol=/root" in found["/"]["options"]
    assert found["/boot"]["source"] == f"/dev/etherd/e{installed.SHELF}.0p{installed.BOOT_PART}"
    assert found[sysimage.DATA_MOUNTPOINT]["source"] == f"/dev/etherd/{installed.DATA_TARGET}p1"
    assert steps["failed"].out.strip() == "", steps["failed"].out  # no unit failed
    assert steps["deadsecs"].out.strip() == "0", steps["deadsecs"].out
    for bad in ("I/O error", "Buffer I/O", "BTRFS error", "EXT4-fs error", "Emergency",
                "Timed out waiting for device"):
        assert bad not in console, bad  # (empty for a netboot: the kernel's console is VGA)
    assert result.exit_code == 0  # powered off cleanly
    for where, check in sysimage.fsck(box.disk).items():
        assert check.clean, f"{where}: {check.output[-2000:]}"
    data = installed.fsck_data(box.data)  # went down cleanly at shutdown
    assert data.returncode == 0, data.stdout
    return steps


def test_install_then_boot_over_aoe_to_multi_user(box, entry, tmp_path):
    # install-entry took root's mount options from the system's fstab, not the installer's
    assert entry.options.split()[-4:] == [
        f"root=/dev/etherd/{installed.TARGET}", "rootfstype=btrfs",
        "rootflags=subvol=root,compress=zstd:1", f"rd.aoe.iface={installed.MAC}"], entry
    assert "published" in box.kernel_install_log, box.kernel_install_log
    result = installed.boot(box, tmp_path / "boot", entry=entry, options=entry.options)
    steps = assert_healthy_boot(result, box)
    console = result.console
    nic, iflist = steps["nic"].out.split("\n")[:2]
    assert nic != "eth0" and not nic.startswith("eth"), steps["nic"].out  # predictable names
    assert iflist.split() == [nic], steps["nic"].out
    # renamed while up: the driver's list follows, and the root disk keeps working
    assert steps["rename"].rc == 0, steps["rename"].out
    assert steps["rename"].out.split() == ["aoex0", "io-ok"], steps["rename"].out
    status = json.loads(steps["status"].out)
    assert steps["status"].rc == 0 and status["next_boot_ok"] is True, steps["status"].out
    levels = {(c["name"], c["level"]) for c in status["checks"]}
    assert ("fstab", "OK") in levels and ("initramfs", "OK") in levels
    assert all(c["level"] == "OK" for c in status["checks"]), status["checks"]
    renamed = NIC_RENAMED.search(console)
    print(f"NIC: {nic} (renamed in the console: {renamed.group(0) if renamed else 'no'})")


def test_netboot_of_the_published_kernel(box, tmp_path):
    """What the NAS serves: iPXE runs the box's script and boots the published kernel and
    initramfs with the published command line (no console= in it: the probe reports)."""
    result = installed.boot(box, tmp_path / "netboot", netboot=True)
    assert_healthy_boot(result, box)


def test_options_rewritten_by_a_tool_that_knows_nothing_of_aoe_on_an_e1000(box, entry,
                                                                           tmp_path):
    """grub2-mkconfig, grubby or an admin: root=UUID=... ro rootflags=subvol=root, no rd.aoe.*.
    The initramfs carries what it needs to find its root by itself. On an e1000, whose driver
    loads late and whose link comes up seconds after probe (one boot for both variants)."""
    options = f"root=UUID={sysimage.ROOT_UUID} ro rootflags=subvol=root"
    result = installed.boot(box, tmp_path / "rewritten", entry=entry, options=options,
                            nic="e1000")
    steps = assert_healthy_boot(result, box)
    assert "e1000" in result.console and steps["nic"].out.split()[0] != "eth0"


def test_the_rescue_initramfs_was_rebuilt_with_aoe(box):
    """Fedora's rescue image is built once, before our drop-in existed: install-entry rebuilds
    it, for the kernel it was made for (read from the rescue kernel's header)."""
    from aoeboot import initramfs

    assert "rebuilt the rescue initramfs boot/initramfs-0-rescue-" in box.install_log, \
        box.install_log
    with sysimage.mounted(box.disk, read_only=True) as target:
        rescue = initramfs.rescue_images(target)
        assert [r.kver for r in rescue] == [box.kver]
        assert initramfs.missing(rescue[0].image) == []


def test_the_entry_boots_one_initramfs_that_carries_the_aoe_options(entry):
    """One initramfs per kernel (read_entry refuses more), and it finds its root by itself."""
    from aoeboot import initramfs

    assert initramfs.missing(entry.initrd) == []
    options = initramfs.baked_options(entry.initrd).options
    assert "rd.aoe=1" in options and f"root=/dev/etherd/{installed.TARGET}" in options
    assert "rootflags=subvol=root,compress=zstd:1" in options
