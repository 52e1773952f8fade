"""`aoeboot discover --kernel` with the real aoe driver: a VM runs the Debian kernel with this
machine's own file system as its root (read-only, 9p), and aoeboot in it discovers vblade's
targets through the driver and udev, then cross-checks them with the userspace probe. A rogue
target on the VM's second NIC (up, too) must stay out of a discovery restricted to eth0. The NAS
on eth0 starts late: `discover --wait` (the installer's way to make the disks appear) waits."""

from __future__ import annotations

import json
import re
import threading

import pytest

from aoelab import hostvm
from aoelab.disk import make_disk
from aoelab.vblade import Vblade, sparse_image
from aoelab.vm import printk_time

pytestmark = [pytest.mark.vm, pytest.mark.dracut]

NAS_DELAY = 25.0  # s after qemu starts: the guest is looking by then (TCG boots in ~10 s)


def test_kernel_driver_discovery_matches_the_userspace_probe(nas, tmp_path, kernel):
    initrd = hostvm.initramfs(tmp_path / "initrd.img", kernel.version, tmp_path)
    init = hostvm.init_script(
        tmp_path / "init",
        {
            "wait": hostvm.aoeboot_argv("discover", "--wait", "--iface", "eth0", "--json"),
            "kernel": hostvm.aoeboot_argv(
                "discover", "--kernel", "--iface", "eth0", "--json", "--timeout", "30"
            ),
            "userspace": hostvm.aoeboot_argv(
                "discover", "--userspace", "--iface", "eth0", "--json"
            ),
            "rogue": hostvm.aoeboot_argv("discover", "--userspace", "--iface", "eth1", "--json"),
        },
    )
    disk = make_disk(tmp_path / "e11.0.img")  # 64 MiB, partition 1
    big = sparse_image(tmp_path / "e11.1.img", 3 << 30)
    rogue = sparse_image(tmp_path / "rogue.img", 32 << 20)
    nas.add_tap("tap1")
    blades = []

    def start_nas() -> None:  # a NAS still booting when the box starts looking
        blades.extend([Vblade(nas, 11, 0, "tap0", disk), Vblade(nas, 11, 1, "tap0", big)])

    late = threading.Timer(NAS_DELAY, start_nas)
    with Vblade(nas, 11, 9, "tap1", rogue):
        vm = hostvm.vm(nas, tmp_path / "console.log", kernel.image, initrd, init, second_tap="tap1")
        try:
            with vm:
                late.start()
                done = vm.wait_for(hostvm.DONE, 240)
                vm.wait_exit(30)
        finally:
            late.cancel()
            for blade in blades:
                blade.stop()
    console = vm.text()
    assert done, console[-3000:]
    results = hostvm.steps(console)
    waited = results["wait"]
    assert waited["rc"] == "0", waited
    assert [t["target"] for t in json.loads(waited["out"])] == ["e11.0", "e11.1"]
    # found by discovering again, not by the driver's own broadcast 60 s after it loaded
    loaded, found_at = printk_time(r"aoe: AoE v", console), printk_time(r"aoe: e11\.0", console)
    assert loaded is not None and found_at is not None and found_at - loaded < 50, console
    kernel_run, userspace_run = results["kernel"], results["userspace"]
    assert kernel_run["rc"] == "0", kernel_run
    nas_mac = nas.mac("tap0")
    found = json.loads(kernel_run["out"])
    assert [
        (t["target"], t["size_bytes"], t["state"], t["interface"], t["mac"], t["partitions"])
        for t in found
    ] == [
        ("e11.0", 64 << 20, "up", "eth0", nas_mac, ["e11.0p1"]),
        ("e11.1", 3 << 30, "up", "eth0", nas_mac, []),
    ]
    assert "aoe: AoE v" in console  # the driver really loaded
    assert userspace_run["rc"] == "0", userspace_run
    probed = json.loads(userspace_run["out"])
    assert [(t["target"], t["size_bytes"], t["mac"]) for t in probed] == [
        (t["target"], t["size_bytes"], t["mac"]) for t in found
    ]
    # the rogue was there, answering on eth1 (the userspace probe sees it), and the driver,
    # restricted to eth0, never took it
    assert [t["target"] for t in json.loads(results["rogue"]["out"])] == ["e11.9"]
    assert not re.search(r"aoe: .*e11\.9", console)  # the driver never even mentioned it
