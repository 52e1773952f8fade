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
from dataclasses import dataclass
from pathlib import Path
from typing import Dict

import pytest

from aoelab import installed, sysimage
from aoelab.dnsmasq import Dnsmasq
from aoelab.netns import Namespace
from aoelab.vblade import Vblade
from aoelab.vm import VM
from tests.conftest import aoeboot, require_programs, require_root

pytestmark = [pytest.mark.vm, pytest.mark.dracut]

BOOT_TIMEOUT = 600  # TCG, systemd and NetworkManager on two loaded cores
CONSOLE = "console=ttyS0,115200 systemd.show_status=1 rd.shell=0 rd.emergency=poweroff"
NIC_RENAMED = re.compile(r"\b(\w+): renamed from eth0\b")


@dataclass(frozen=True)
class Box:
    disk: Path
    data: Path
    nas: Path  # the NAS's share: published kernels
    entry: installed.Entry
    install_log: str
    kernel_install_log: str


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
    "status": ["aoeboot", "status", "--json"],
    "failed": ["systemctl", "--failed", "--no-legend", "--plain"],
}


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Box:
    """Install once: the system disk set up to boot from AoE, as a user does it."""
    require_root()
    require_programs("mmdebstrap", "qemu-system-x86_64", "vblade", "btrfs", "mkfs.ext4")
    work = tmp_path_factory.mktemp("installed")
    nas = work / "nas"
    nas.mkdir()
    disk = sysimage.system_image(work / "system.img", extra_fstab=sysimage.data_fstab_line())
    data = sysimage.make_data_disk(work / "data.img")
    pyz = installed.build_pyz(work / "aoeboot.pyz")
    with sysimage.mounted(disk) as target:
        sysimage.install_aoeboot(target)  # the package, as dnf --installroot would put it
        installed.make_generic(target)
        installed.add_grub_model(target)
        installed.mount_nas_share(target, nas)
        (target / "etc/aoeboot").mkdir(exist_ok=True)
        (target / "etc/aoeboot/aoeboot.conf").write_text(
            f"[publish]\ndestination = {installed.PUBLISH_DIR}\n")
        install_log = installed.install_entry_from_installer(
            pyz, target, "--target", installed.TARGET, "--iface", installed.MAC)
        kver = sysimage.boot_kernels(target)[-1]
        with installed.nas_bind(target, nas):
            done = sysimage.chroot_run(target, ["kernel-install", "-v", "add", kver,
                                                f"/boot/vmlinuz-{kver}"])
        installed.write_probe(target, PROBE, mounts=[sysimage.DATA_MOUNTPOINT])
        entry = installed.read_entry(target, kver, work)
    return Box(disk, data, nas, entry, install_log, done.stdout + done.stderr)


def boot(box: Box, workdir: Path, options: str = "", netboot: bool = False) -> Dict[str, object]:
    """The NAS (vblade serving both disks, dnsmasq as `nas-config` configures it, TFTP from the
    published directory) and the box: the entry's kernel and initramfs with `options`, or, with
    `netboot`, whatever iPXE finds in the NAS's boot script."""
    workdir.mkdir(exist_ok=True)
    fragment = aoeboot("nas-config", "--mac", installed.MAC, "--target", installed.TARGET,
                       "--format", "dnsmasq")
    assert fragment.returncode == 0, fragment.stderr
    with Namespace("aoesys") as ns:
        ns.add_tap("tap0")
        with Vblade(ns, installed.SHELF, 0, "tap0", box.disk), \
                Vblade(ns, installed.SHELF, 1, "tap0", box.data), \
                Dnsmasq(ns, "tap0", box.nas / "aoeboot", fragment.stdout, workdir):
            probe = workdir / "probe.log"
            how = ({"netboot": True} if netboot else
                   {"kernel": box.entry.linux, "initrd": box.entry.initrd,
                    "append": f"{CONSOLE} {options}"})
            vm = VM(ns, workdir / "console.log", mac=installed.MAC, memory=1024,
                    extra=installed.vm_extra(probe, box.nas), **how)  # type: ignore[arg-type]
            with vm:
                done = installed.wait_for_probe(probe, vm, BOOT_TIMEOUT)
                exit_code = vm.wait_exit(180)
    probed = probe.read_text(errors="replace") if probe.exists() else ""
    return {"done": done, "exit": exit_code, "console": vm.text(),
            "steps": installed.steps(probed)}


def mounts(step: installed.Step) -> Dict[str, Dict[str, str]]:
    found = {}
    for line in step.out.splitlines():
        fields = line.split()
        if len(fields) == 4:
            found[fields[0]] = {"source": fields[1], "fstype": fields[2], "options": fields[3]}
    return found


def assert_healthy_boot(result: Dict[str, object], box: Box) -> Dict[str, installed.Step]:
    console = str(result["console"])
    assert result["done"], f"the probe never ran (no multi-user.target?):\n{console[-5000:]}"
    steps: Dict[str, installed.Step] = result["steps"]  # type: ignore[assignment]
    found = mounts(steps["mounts"])
    assert found["/"]["source"] == f"/dev/etherd/{installed.TARGET}[/root]", found["/"]
    assert found["/"]["fstype"] == "btrfs" and "subvol=/root" in found["/"]["options"]
    assert found["/boot"]["source"] == f"/dev/etherd/e{installed.SHELF}.0p{installed.BOOT_PART}"
    assert found[sysimage.DATA_MOUNTPOINT]["source"] == f"/dev/etherd/{installed.DATA_TARGET}p1"
    assert steps["failed"].out.strip() == "", steps["failed"].out  # no unit failed
    for bad in ("I/O error", "Buffer I/O", "BTRFS error", "EXT4-fs error", "Emergency",
                "Timed out waiting for device"):
        assert bad not in console, bad  # (empty for a netboot: the kernel's console is VGA)
    assert result["exit"] == 0  # powered off cleanly
    for where, check in sysimage.fsck(box.disk).items():
        assert check.clean, f"{where}: {check.output[-2000:]}"
    return steps


def test_install_then_boot_over_aoe_to_multi_user(box, tmp_path):
    # install-entry took root's mount options from the system's fstab, not the installer's
    assert box.entry.options.split()[-4:] == [
        f"root=/dev/etherd/{installed.TARGET}", "rootfstype=btrfs",
        "rootflags=subvol=root,compress=zstd:1", f"rd.aoe.iface={installed.MAC}"], box.entry
    assert "published" in box.kernel_install_log, box.kernel_install_log
    result = boot(box, tmp_path / "boot", box.entry.options)
    steps = assert_healthy_boot(result, box)
    console = str(result["console"])
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
    result = boot(box, tmp_path / "netboot", netboot=True)
    assert_healthy_boot(result, box)


def test_options_rewritten_by_a_tool_that_knows_nothing_of_aoe(box, tmp_path):
    """grub2-mkconfig, grubby or an admin: root=UUID=... ro rootflags=subvol=root, no rd.aoe.*.
    The initramfs carries what it needs to find its root by itself."""
    options = f"root=UUID={sysimage.ROOT_UUID} ro rootflags=subvol=root"
    result = boot(box, tmp_path / "rewritten", options)
    assert_healthy_boot(result, box)


def test_the_entry_boots_one_initramfs_that_carries_the_aoe_options(box):
    """One initramfs per kernel (read_entry refuses more), and it finds its root by itself."""
    from aoeboot import initramfs

    assert initramfs.missing(box.entry.initrd) == []
    options = initramfs.baked_options(box.entry.initrd).options
    assert "rd.aoe=1" in options and f"root=/dev/etherd/{installed.TARGET}" in options
    assert "rootflags=subvol=root,compress=zstd:1" in options
