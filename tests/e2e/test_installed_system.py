"""A real installed system, laid out as Fedora's installer lays it out, boots over AoE and keeps
booting: Debian 13 (dracut 106, systemd 257, kernel 6.12, NetworkManager), GPT with an ESP,
/boot ext4, / on btrfs subvolume `root`, everything mounted by UUID=, predictable NIC names.

As a user gets there: aoeboot goes into the target as a package; `install-entry` runs from the
installer's shell (aoeboot.pyz under a bare python3); the distribution's `kernel-install add`
runs our plugin (after a model of Fedora's 20-grub.install, which writes the entry); then vblade
serves the disk (e11.0) and a data volume (e11.1, mounted from fstab by UUID=), and a VM boots
the entry's kernel, initramfs and options. A probe service reports from inside once
multi-user.target is reached, and powers off; the file systems must be clean afterwards.

The first boot also proves that only this box reaches its disk: the NAS serves the system disk
with vblade started exactly as `aoeboot nas-config --format vblade` prints it (restricted to the
box's MAC), on a bridge that other machines join. While the box runs normally, a client with
another MAC neither discovers e11.0 nor reads a sector of it, though it finds and reads the
unrestricted data volume e11.1. Then a rogue vblade with a third MAC exports the same shelf.slot
(the same image, so the box's data stays whole): the same client finds e11.0 from it and reads
its sector (the control: the checks above could fail), the box's driver takes it as one more
server, and `aoeboot status` inside the box warns, naming the rogue's MAC, which install-entry
did not record.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from aoeboot.target import Target
from aoelab import datadisk, disklayout, fsck, installed, suspend, sysimage
from aoelab.installed import Boot, Box
from aoelab.netns import Namespace, veth_pair
from aoelab.rawread import read_sector_in
from aoelab.vblade import Vblade
from aoelab.vm import VM
from tests.helpers import REPO, require_programs, require_root

pytestmark = [pytest.mark.vm, pytest.mark.dracut]

NIC_RENAMED = re.compile(r"\b(\w+): renamed from eth0\b")
CLIENT_MAC = "02:cc:00:00:00:02"
ROGUE_MAC = "02:ee:00:00:00:03"
# on the NAS share: this boot gets a rogue server (the probe waits for it), and it has started
ROGUE_WANTED, ROGUE_STARTED = "rogue-wanted", "rogue-started"
GPT_LBA = 1  # the system disk's GPT header: "EFI PART"
SUSPENDS = 3


# What the probe asks the running system, in this order.
PROBE = {
    "mounts": ["findmnt", "-rn", "-o", "TARGET,SOURCE,FSTYPE,OPTIONS"],
    "nic": [
        "sh",
        "-c",
        f'for n in /sys/class/net/*; do [ "$(cat $n/address)" = {installed.MAC} ]'
        " && echo ${n##*/}; done; cat /sys/module/aoe/parameters/aoe_iflist",
    ],
    # renames while up, at any time: the aoe driver must be told, or the root disk goes silent.
    # First udev's own, as at boot, with the page cache dropped: what runs after the rename
    # could not be read from the disk, so the list must follow before it. Then one by hand.
    "rename": [
        "sh",
        "-c",
        "set -e; link=/etc/systemd/network/10-aoelab.link; mkdir -p ${link%/*};"
        f" printf '[Match]\\nMACAddress={installed.MAC}\\n[Link]\\nName=aoex0\\n' > $link;"
        " nic=$(grep -l " + installed.MAC + " /sys/class/net/*/address | cut -d/ -f5);"
        " udevadm control --reload; sync; echo 3 > /proc/sys/vm/drop_caches;"
        " udevadm trigger --action=add --settle /sys/class/net/$nic; udevadm settle;"
        " cat /sys/module/aoe/parameters/aoe_iflist; rm $link; udevadm control --reload;"
        " ip link set dev aoex0 name aoex1;"
        " udevadm settle; cat /sys/module/aoe/parameters/aoe_iflist;"
        " dd if=/dev/urandom of=/var/tmp/after-rename bs=64k count=32 conv=fsync"
        " status=none; sync; echo 3 > /proc/sys/vm/drop_caches;"
        " timeout 120 sha256sum /var/tmp/after-rename >/dev/null && echo io-ok",
    ],
    # the root disk never gives up on the NAS: set by the initramfs, kept after switch_root,
    # also when the options were rewritten without any rd.aoe.*
    "deadsecs": ["cat", "/sys/module/aoe/parameters/aoe_deadsecs"],
    "status": ["aoeboot", "status", "--json"],
    # in the first boot: until the host has started the rogue; then until the driver takes it
    # as a second server
    "rogue": [
        "sh",
        "-c",
        f"n={installed.NAS_MOUNT}; [ -e $n/{ROGUE_WANTED} ] || exit 0; i=0;"
        f" until [ -e $n/{ROGUE_STARTED} ]; do i=$((i+1)); [ $i -gt 1200 ] && exit 1;"
        " sleep 0.5; done; i=0; d=/sys/kernel/debug/aoe/e11.0;"
        " until [ \"$(grep -c '^[0-9a-f]\\{12\\}:' $d)\" -ge 2 ]; do i=$((i+1));"
        " [ $i -gt 120 ] && break; echo > /dev/etherd/discover; sleep 0.5; done;"
        " grep '^[0-9a-f]\\{12\\}:' $d",
    ],
    "status-rogue": ["aoeboot", "status", "--json"],
    "io": [
        "sh",
        "-c",
        "dd if=/dev/urandom of=/var/tmp/after-rogue bs=64k count=32 conv=fsync"
        " status=none && sync && echo 3 > /proc/sys/vm/drop_caches &&"
        " timeout 120 sha256sum /var/tmp/after-rogue > /dev/null && echo io-ok",
    ],
    "failed": ["systemctl", "--failed", "--no-legend", "--plain"],
    # in the first boot: a living-room box sleeps, three times, each with the page cache
    # dropped first; last, as the NAS share does not come back from it
    "suspend": suspend.step(SUSPENDS, installed.MAC, installed.NAS_MOUNT),
}


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Box:
    """Install once: the system disk set up to boot from AoE, as a user does it."""
    require_root()
    require_programs("mmdebstrap", "qemu-system-x86_64", "vblade", "btrfs", "mkfs.ext4", "dnsmasq")
    work = tmp_path_factory.mktemp("installed")

    def prepare(target: Path) -> None:
        installed.write_probe(target, PROBE, mounts=[datadisk.DATA_MOUNTPOINT])
        installed.add_rescue(target)

    # The installer runs on a disk attached here, not over AoE: the NAS's MAC is named.
    return installed.install_box(
        work, prepare=prepare, install_args=("--server", installed.NAS_MAC)
    )


@pytest.fixture(scope="module")
def entry(box: Box, tmp_path_factory: pytest.TempPathFactory) -> installed.Entry:
    """The boot entry kernel-install wrote, with its files copied out, as a boot loader reads
    it."""
    with sysimage.mounted(box.disk, read_only=True) as target:
        return installed.read_entry(target, box.kver, tmp_path_factory.mktemp("entry"))


def discover(client: Namespace) -> list[tuple[str, str]]:
    out = client.run(
        [
            sys.executable,
            "-m",
            "aoeboot",
            "discover",
            "--userspace",
            "--json",
            "-i",
            "eth0",
            "--timeout",
            "1",
        ],
        check=False,
        cwd=REPO,
    )
    assert out.returncode in (0, 1), out.stderr
    return sorted((row["target"], row["mac"]) for row in json.loads(out.stdout))


def read_sector(client: Namespace, server: str, target: str, lba: int) -> bytes | None:
    """aoeboot's own raw ATA READ, from the client, straight to `server` (no discovery)."""
    return read_sector_in(client, server, Target.parse(target), lba, timeout=2.0)


def wait_for_step(probe_log: Path, vm: VM, name: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe_log.exists() and f"{installed.STEP}-END {name}" in probe_log.read_text(
            errors="replace"
        ):
            return True
        if vm.proc is not None and vm.proc.poll() is not None:
            return False
        time.sleep(0.5)
    return False


@pytest.fixture(scope="module")
def first_boot(
    box: Box, entry: installed.Entry, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Boot, dict[str, Any]]:
    """The first boot, with the NAS as `nas-config` sets it up, a client with another MAC on
    its network, and, once the box is up, a rogue server for e11.0. What the client saw, by
    phase, beside the boot's result."""
    # again only if qemu's S3 resume hung (suspend.ResumeHung) or the guest crashed in S3
    for attempt in (1, 2):
        result, seen = _first_boot(box, entry, tmp_path_factory.mktemp("first-boot"))
        if "resume-hung" not in seen:
            break
        print(
            f"first boot, attempt {attempt}: {seen['resume-hung']}; the console from the "
            f"last suspend on:\n{result.console[result.console.rfind('PM: suspend entry') :]}"
        )
    assert seen.get("up"), f"the box never came up:\n{result.console[-5000:]}"
    return result, seen


def _first_boot(box: Box, entry: installed.Entry, work: Path) -> tuple[Boot, dict[str, Any]]:
    seen: dict[str, Any] = {}
    for flag in (ROGUE_WANTED, suspend.WANTED):
        (box.nas / flag).write_text("")
    try:
        with Namespace("aoecli") as client, Namespace("aoerog") as rogue:

            def during(live: installed.Live) -> None:
                ns, nas_iface, vm, probe_log = live.ns, live.nas_iface, live.vm, live.probe
                veth_pair(ns, "cli0", client, "eth0", right_mac=CLIENT_MAC)
                veth_pair(ns, "rog0", rogue, "eth0", right_mac=ROGUE_MAC)
                for port in ("cli0", "rog0"):
                    ns.run(["ip", "link", "set", port, "master", nas_iface])
                # the box is up and running from its disk when the probe's status step is done
                seen["up"] = wait_for_step(probe_log, vm, "status", 900)
                if not seen["up"]:
                    return
                seen["restricted"] = (
                    discover(client),
                    read_sector(client, installed.NAS_MAC, "e11.0", GPT_LBA),
                    read_sector(client, installed.NAS_MAC, "e11.1", 0),
                )
                seen["rogue"] = Vblade(rogue, installed.SHELF, 0, "eth0", box.disk)
                seen["open"] = (discover(client), read_sector(client, ROGUE_MAC, "e11.0", GPT_LBA))
                (box.nas / ROGUE_STARTED).write_text("")
                try:
                    seen["resumed"] = suspend.wake_each(
                        live.monitor,
                        probe_log,
                        SUSPENDS,
                        lambda: vm.proc is not None and vm.proc.poll() is None,
                    )
                except suspend.ResumeHung as hung:
                    seen["resume-hung"] = str(hung)
                    vm.stop()
                except AssertionError as failed:  # the guest kernel crashed in or out of S3
                    crash = suspend.crashed(vm.text())
                    if crash is None:
                        raise
                    seen["resume-hung"] = f"{failed}; its kernel crashed: {crash}"
                    vm.stop()

            result = installed.boot(
                box,
                work,
                entry=entry,
                options=entry.options,
                lan=True,
                during=during,
                root_argv=lambda iface: installed.nas_config_argv(
                    installed.TARGET, iface, box.disk
                ),
            )
            if "rogue" in seen:
                seen["rogue"].stop()  # before the file systems are checked
    finally:
        for flag in (ROGUE_WANTED, ROGUE_STARTED, suspend.WANTED):
            (box.nas / flag).unlink(missing_ok=True)
    return result, seen


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
    assert found[datadisk.DATA_MOUNTPOINT]["source"] == f"/dev/etherd/{installed.DATA_TARGET}p1"
    assert steps["failed"].out.strip() == "", steps["failed"].out  # no unit failed
    assert steps["deadsecs"].out.strip() == "0", steps["deadsecs"].out
    for bad in (
        "I/O error",
        "Buffer I/O",
        "BTRFS error",
        "EXT4-fs error",
        "Emergency",
        "Timed out waiting for device",
    ):
        assert bad not in console, bad  # (empty for a netboot: the kernel's console is VGA)
    assert result.exit_code == 0  # powered off cleanly
    for where, check in fsck.fsck(box.disk).items():
        assert check.clean, f"{where}: {check.output[-2000:]}"
    data = installed.fsck_data(box.data)  # went down cleanly at shutdown
    assert data.returncode == 0, data.stdout
    return steps


def test_install_then_boot_over_aoe_to_multi_user(box, entry, first_boot):
    # install-entry took root's mount options from the system's fstab, not the installer's
    assert entry.options.split()[-4:] == [
        f"root=/dev/etherd/{installed.TARGET}",
        "rootfstype=btrfs",
        "rootflags=subvol=root,compress=zstd:1",
        f"rd.aoe.iface={installed.MAC}",
    ], entry
    assert "published" in box.kernel_install_log, box.kernel_install_log
    result, _ = first_boot
    steps = assert_healthy_boot(result, box)  # ran normally throughout, the rogue too
    console = result.console
    nic, iflist = steps["nic"].out.split("\n")[:2]
    assert nic != "eth0" and not nic.startswith("eth"), steps["nic"].out  # predictable names
    assert iflist.split() == [nic], steps["nic"].out
    # renamed while up: the driver's list follows, and the root disk keeps working
    assert steps["rename"].rc == 0, steps["rename"].out
    assert steps["rename"].out.split() == ["aoex0", "aoex1", "io-ok"], steps["rename"].out
    status = json.loads(steps["status"].out)
    assert steps["status"].rc == 0 and status["next_boot_ok"] is True, steps["status"].out
    levels = {(c["name"], c["level"]) for c in status["checks"]}
    assert ("fstab", "OK") in levels and ("initramfs", "OK") in levels
    # NetworkManager manages the NIC: the drop-in install-entry wrote covers it, and what it
    # can still do (take the link down: on sleep too, virtio-net has no Wake-on-LAN) the
    # watcher undoes
    assert ("nm", "OK") in levels and ("suspend", "OK") in levels, status["checks"]
    assert all(c["level"] == "OK" for c in status["checks"]), status["checks"]
    renamed = NIC_RENAMED.search(console)
    print(f"NIC: {nic} (renamed in the console: {renamed.group(0) if renamed else 'no'})")
    assert steps["io"].out.split() == ["io-ok"], steps["io"].out  # after the rogue came


def test_the_box_sleeps_and_wakes_three_times_and_goes_on(first_boot):
    """Suspend to RAM with NetworkManager managing the root disk's NIC: NM takes the link down
    for sleep (as it did on the box that hung for good); aoeboot-watch brings it straight up
    again, the kernel's sync before sleeping completes, and after each wake-up a synced write
    on root completes. Then NetworkManager's other ways to touch the link (suspend.NM_ACTIONS,
    the DHCP lease running out among them), a synced write after each; and a reboot with NM
    up."""
    result, seen = first_boot
    assert "resume-hung" not in seen, seen["resume-hung"]  # twice: see suspend.ResumeHung
    step = result.steps["suspend"]
    print(f"wake-up -> synced write on root (s): {seen.get('resumed')}")
    print(step.out[-3000:])
    assert step.rc == 0, step.out
    assert len(seen["resumed"]) == SUSPENDS
    assert f"\n{SUSPENDS}\ns2idle [deep]\n" in step.out, step.out  # S3 (deep) each time
    # NetworkManager fully managed the NIC and took it down for sleep, each time
    assert step.out.count("reason 'unmanaged-sleeping', managed-type: 'full'") == SUSPENDS, step.out
    restored = re.findall(
        r"aoeboot: (\S+) carries the root disk e11\.0 and was taken down", result.console
    )
    assert len(restored) >= SUSPENDS, result.console[-5000:]
    # then what else NetworkManager may do: the root disk goes on after each
    done = dict(re.findall(rf"^{suspend.NM_MARK} (\S+) ok rc=(\d+)$", step.out, re.M))
    print(
        f"NetworkManager: went on after {done} (action: exit status); links brought up "
        f"again: {len(restored)}"
    )
    assert list(done) == list(suspend.NM_ACTIONS), step.out
    assert done["lease-runs-out"] == "0", step.out  # the lease ran out: NM dropped the address
    # and the box rebooted with NetworkManager up, cleanly (assert_healthy_boot: fsck clean)
    assert "reboot: Restarting system" in result.console, result.console[-3000:]
    # networking off took the link down too, and the watcher brought it up (managed no, after
    # it, was seen not to: NetworkManager then holds the NIC as external)
    assert len(restored) >= SUSPENDS + 1, result.console[-5000:]


def test_only_the_box_reaches_its_disk(box, first_boot):
    _, seen = first_boot
    with open(box.disk, "rb") as handle:
        handle.seek(GPT_LBA * 512)
        gpt_header = handle.read(512)
    assert gpt_header[:8] == b"EFI PART"
    found, nas_sector, data_sector = seen["restricted"]
    # another MAC: e11.0 neither discovered nor read, while the same NAS serves it e11.1
    assert found == [("e11.1", installed.NAS_MAC)], found
    assert nas_sector is None
    assert data_sector is not None and len(data_sector) == 512
    # control: the same client finds and reads e11.0 where it is exported without -m
    found, rogue_sector = seen["open"]
    assert ("e11.0", ROGUE_MAC) in found, found
    assert rogue_sector == gpt_header


def test_a_second_server_for_the_disk_is_named(box, entry, first_boot):
    from aoeboot import initramfs

    with sysimage.mounted(box.disk, read_only=True) as target:
        config = (target / "etc/aoeboot/aoeboot.conf").read_text()
    assert f"servers = {installed.NAS_MAC}\n" in config, config
    # the image carries the recorded server itself, for its AoE report
    assert f"rd.aoe.server={installed.NAS_MAC}" in initramfs.baked_options(entry.initrd).options
    steps = first_boot[0].steps
    before = json.loads(steps["status"].out)
    assert ("server", "OK") in {(c["name"], c["level"]) for c in before["checks"]}, before
    assert steps["rogue"].rc == 0, steps["rogue"].out
    assert len(steps["rogue"].out.split()) == 2, steps["rogue"].out  # the driver has both
    after = json.loads(steps["status-rogue"].out)
    warned = [c for c in after["checks"] if c["name"] == "server"]
    assert [c["level"] for c in warned] == ["WARN"], after["checks"]
    assert f"also answered by {ROGUE_MAC}" in warned[0]["message"], warned
    assert f"(recorded: {installed.NAS_MAC})" in warned[0]["message"], warned
    assert after["next_boot_ok"] is True


def test_netboot_of_the_published_kernel(box, tmp_path):
    """What the NAS serves: iPXE runs the box's script and boots the published kernel and
    initramfs with the published command line (no console= in it: the probe reports)."""
    result = installed.boot(box, tmp_path / "netboot", netboot=True)
    assert_healthy_boot(result, box)


def test_options_rewritten_by_a_tool_that_knows_nothing_of_aoe_on_an_e1000(box, entry, tmp_path):
    """grub2-mkconfig, grubby or an admin: root=UUID=... ro rootflags=subvol=root, no rd.aoe.*.
    The initramfs carries what it needs to find its root by itself. On an e1000, whose driver
    loads late and whose link comes up seconds after probe (one boot for both variants)."""
    options = f"root=UUID={disklayout.ROOT_UUID} ro rootflags=subvol=root"
    result = installed.boot(box, tmp_path / "rewritten", entry=entry, options=options, nic="e1000")
    steps = assert_healthy_boot(result, box)
    assert "e1000" in result.console and steps["nic"].out.split()[0] != "eth0"


def test_the_rescue_initramfs_was_rebuilt_with_aoe(box):
    """Fedora's rescue image is built once, before our drop-in existed: install-entry rebuilds
    it, for the kernel it was made for (read from the rescue kernel's header)."""
    from aoeboot import initramfs

    assert "rebuilt the rescue initramfs boot/initramfs-0-rescue-" in box.install_log, (
        box.install_log
    )
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
