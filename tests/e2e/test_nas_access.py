"""Only this box can reach its disk, and a second server for it does not go unnoticed.

One boot of the real installed system (aoelab.installed): the NAS serves the system disk with
vblade started exactly as `aoeboot nas-config --format vblade` prints it (restricted to the
box's MAC), on a bridge that other machines join. While the box runs normally, a second client
with another MAC on that network neither discovers e11.0 nor reads a sector of it, though it
finds and reads the unrestricted data volume e11.1 of the same NAS. Then a rogue vblade with a
third MAC exports the same shelf.slot (the same image, so the box's data stays whole): the same
client finds e11.0 from it and reads its sector (the control: the checks above could fail),
the box's driver takes it as one more server, and `aoeboot status` inside the box warns,
naming the rogue's MAC, which install-entry did not record.

A short second boot (the lab's small root disk) with only an unrecorded server answering for
e11.0, holding no partition: the initramfs gives up, and its AoE report names that server.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
import time
from pathlib import Path

import pytest

from aoelab import installed, sysimage
from aoelab.installed import Box
from aoelab.netns import Namespace, veth_pair
from aoelab.vblade import Vblade, sparse_image
from aoelab.vm import VM
from tests.e2e.test_installed_system import assert_healthy_boot
from tests.helpers import REPO, aoeboot, require_programs, require_root

pytestmark = [pytest.mark.vm, pytest.mark.dracut]

CLIENT_MAC = "02:cc:00:00:00:02"
ROGUE_MAC = "02:ee:00:00:00:03"
FLAG = "rogue-started"  # on the NAS share: the probe waits for it
GPT_LBA = 1  # the system disk's GPT header: "EFI PART"

PROBE = {
    "mounts": ["findmnt", "-rn", "-o", "TARGET,SOURCE,FSTYPE,OPTIONS"],
    "status": ["aoeboot", "status", "--json"],
    # until the host has started the rogue; then until the driver takes it as a second server
    "rogue": ["sh", "-c", f"i=0; until [ -e {installed.NAS_MOUNT}/{FLAG} ]; do i=$((i+1));"
              " [ $i -gt 1200 ] && exit 1; sleep 0.5; done; i=0; d=/sys/kernel/debug/aoe/e11.0;"
              " until [ \"$(grep -c '^[0-9a-f]\\{12\\}:' $d)\" -ge 2 ]; do i=$((i+1));"
              " [ $i -gt 120 ] && break; echo > /dev/etherd/discover; sleep 0.5; done;"
              " grep '^[0-9a-f]\\{12\\}:' $d"],
    "status-rogue": ["aoeboot", "status", "--json"],
    "io": ["sh", "-c", "dd if=/dev/urandom of=/var/tmp/after-rogue bs=64k count=32 conv=fsync"
           " status=none && sync && echo 3 > /proc/sys/vm/drop_caches &&"
           " timeout 120 sha256sum /var/tmp/after-rogue > /dev/null && echo io-ok"],
    "failed": ["systemctl", "--failed", "--no-legend", "--plain"],
    "deadsecs": ["cat", "/sys/module/aoe/parameters/aoe_deadsecs"],  # assert_healthy_boot
}


def nas_config_argv(nas_iface: str, image: Path) -> list[str]:
    """The vblade command line as `aoeboot nas-config` prints it, split as a shell would."""
    out = aoeboot("nas-config", "--mac", installed.MAC, "--target", installed.TARGET,
                  "--format", "vblade", "--nas-iface", nas_iface, "--export", str(image))
    assert out.returncode == 0, out.stderr
    commands = [line for line in out.stdout.splitlines() if not line.startswith("#")]
    assert len(commands) == 1, out.stdout
    return shlex.split(commands[0])


def discover(client: Namespace) -> list[tuple[str, str]]:
    out = client.run([sys.executable, "-m", "aoeboot", "discover", "--userspace", "--json",
                      "-i", "eth0", "--timeout", "1"], check=False, cwd=REPO)
    assert out.returncode in (0, 1), out.stderr
    return sorted((row["target"], row["mac"]) for row in json.loads(out.stdout))


def read_sector(client: Namespace, server: str, target: str, lba: int) -> bytes | None:
    """aoeboot's own raw ATA READ, from the client, straight to `server` (no discovery)."""
    code = ("import sys; from aoeboot.probe import read_sector; from aoeboot.target import Target;"
            f"d = read_sector('eth0', '{server}', Target.parse('{target}'), {lba}, timeout=2.0);"
            "sys.stdout.write('none' if d is None else d.hex())")
    out = client.run([sys.executable, "-c", code], check=False, cwd=REPO)
    assert out.returncode == 0, out.stderr
    return None if out.stdout == "none" else bytes.fromhex(out.stdout)


def wait_for_step(probe_log: Path, vm: VM, name: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe_log.exists() and f"{installed.STEP}-END {name}" in probe_log.read_text(
                errors="replace"):
            return True
        if vm.proc is not None and vm.proc.poll() is not None:
            return False
        time.sleep(0.5)
    return False


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Box:
    require_root()
    require_programs("mmdebstrap", "qemu-system-x86_64", "vblade", "btrfs", "mkfs.ext4",
                     "dnsmasq")
    work = tmp_path_factory.mktemp("nas-access")

    def prepare(target: Path) -> None:
        installed.write_probe(target, PROBE, mounts=[sysimage.DATA_MOUNTPOINT])

    # The installer runs on a disk attached here, not over AoE: the NAS's MAC is named.
    return installed.install_box(work, prepare=prepare,
                                 install_args=("--server", installed.NAS_MAC))


def test_only_the_box_reaches_its_disk_and_a_rogue_server_is_named(box, tmp_path):
    (tmp_path / "entry").mkdir()
    with sysimage.mounted(box.disk, read_only=True) as target:
        entry = installed.read_entry(target, box.kver, tmp_path / "entry")
        config = (target / "etc/aoeboot/aoeboot.conf").read_text()
    assert f"servers = {installed.NAS_MAC}\n" in config, config
    from aoeboot import initramfs

    # the image carries the recorded server itself, for its AoE report
    assert f"rd.aoe.server={installed.NAS_MAC}" in initramfs.baked_options(entry.initrd).options
    with open(box.disk, "rb") as handle:
        handle.seek(GPT_LBA * 512)
        gpt_header = handle.read(512)
    assert gpt_header[:8] == b"EFI PART"

    seen = {}
    with Namespace("aoecli") as client, Namespace("aoerog") as rogue:

        def during(ns: Namespace, nas_iface: str, vm: VM, probe_log: Path) -> None:
            veth_pair(ns, "cli0", client, "eth0", right_mac=CLIENT_MAC)
            veth_pair(ns, "rog0", rogue, "eth0", right_mac=ROGUE_MAC)
            for port in ("cli0", "rog0"):
                ns.run(["ip", "link", "set", port, "master", nas_iface])
            # the box is up and running from its disk when the probe's status step is done
            seen["up"] = wait_for_step(probe_log, vm, "status", 900)
            if not seen["up"]:
                return
            seen["restricted"] = (discover(client),
                                  read_sector(client, installed.NAS_MAC, "e11.0", GPT_LBA),
                                  read_sector(client, installed.NAS_MAC, "e11.1", 0))
            seen["rogue"] = Vblade(rogue, installed.SHELF, 0, "eth0", box.disk)
            seen["open"] = (discover(client),
                            read_sector(client, ROGUE_MAC, "e11.0", GPT_LBA))
            (box.nas / FLAG).write_text("")

        result = installed.boot(box, tmp_path / "boot", entry=entry, options=entry.options,
                                lan=True, during=during,
                                root_argv=lambda iface: nas_config_argv(iface, box.disk))
        if "rogue" in seen:
            seen["rogue"].stop()  # before the file systems are checked
    assert seen.get("up"), f"the box never came up:\n{result.console[-5000:]}"

    found, nas_sector, data_sector = seen["restricted"]
    # another MAC: e11.0 neither discovered nor read, while the same NAS serves it e11.1
    assert found == [("e11.1", installed.NAS_MAC)], found
    assert nas_sector is None
    assert data_sector is not None and len(data_sector) == 512
    # control: the same client finds and reads e11.0 where it is exported without -m
    found, rogue_sector = seen["open"]
    assert ("e11.0", ROGUE_MAC) in found, found
    assert rogue_sector == gpt_header

    steps = assert_healthy_boot(result, box)  # the box booted and ran normally throughout
    before = json.loads(steps["status"].out)
    assert ("server", "OK") in {(c["name"], c["level"]) for c in before["checks"]}, before
    assert all(c["level"] == "OK" for c in before["checks"]), before["checks"]
    assert steps["rogue"].rc == 0, steps["rogue"].out
    assert steps["rogue"].out.split() and len(steps["rogue"].out.split()) == 2, steps["rogue"].out
    after = json.loads(steps["status-rogue"].out)
    warned = [c for c in after["checks"] if c["name"] == "server"]
    assert [c["level"] for c in warned] == ["WARN"], after["checks"]
    assert f"also answered by {ROGUE_MAC}" in warned[0]["message"], warned
    assert f"(recorded: {installed.NAS_MAC})" in warned[0]["message"], warned
    assert after["next_boot_ok"] is True
    assert steps["io"].out.split() == ["io-ok"], steps["io"].out


def test_the_initramfs_report_names_a_server_it_did_not_record(nas, tmp_path, kernel,
                                                               initramfs):
    """Only an unrecorded server answers for e11.0, with nothing on it: root never comes."""
    recorded = "52:54:00:aa:00:01"
    blank = sparse_image(tmp_path / "blank.img", 64 << 20)
    unexpected = nas.mac("tap0")
    with Vblade(nas, 11, 0, "tap0", blank):
        vm = VM(nas, tmp_path / "console.log", kernel=kernel.image, initrd=initramfs("systemd"),
                append=f"root=aoe:e11.0p1 rd.aoe.timeout=30 rd.aoe.server={recorded}")
        with vm:
            report = vm.wait_for(r"end of AoE report", 240)
            vm.wait_exit(60)
    console = vm.text()
    assert report, f"no AoE report; console tail:\n{console[-3000:]}"
    raw = unexpected.replace(":", "")
    assert re.search(rf"aoe: target e11.0 state \S+ netif \S+ mac {raw} sectors 131072", console), \
        console[-3000:]
    assert (f"aoe: target e11.0 answered by {unexpected}, a server this box did not record "
            f"(rd.aoe.server={recorded}): a second NAS exporting e11.0, or a spoofer") in console
