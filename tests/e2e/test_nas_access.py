"""A server the box did not record answers for its disk: the initramfs's AoE report says so.

A short boot (the lab's small root disk) with only an unrecorded server answering for e11.0,
holding no partition: the initramfs gives up, and its AoE report names that server. (The NAS
restricted to the box's MAC, and a rogue server named by `aoeboot status` on the running box,
are proven in the first boot of tests/e2e/test_installed_system.py.)
"""

from __future__ import annotations

import re

import pytest

from aoelab.vblade import Vblade, sparse_image
from aoelab.vm import VM

pytestmark = [pytest.mark.vm, pytest.mark.dracut]


def test_the_initramfs_report_names_a_server_it_did_not_record(nas, tmp_path, kernel, initramfs):
    """Only an unrecorded server answers for e11.0, with nothing on it: root never comes."""
    recorded = "52:54:00:aa:00:01"
    blank = sparse_image(tmp_path / "blank.img", 64 << 20)
    unexpected = nas.mac("tap0")
    with Vblade(nas, 11, 0, "tap0", blank):
        vm = VM(
            nas,
            tmp_path / "console.log",
            kernel=kernel.image,
            initrd=initramfs("systemd"),
            append=f"root=aoe:e11.0p1 rd.aoe.timeout=30 rd.aoe.server={recorded}",
        )
        with vm:
            report = vm.wait_for(r"end of AoE report", 240)
            vm.wait_exit(60)
    console = vm.text()
    assert report, f"no AoE report; console tail:\n{console[-3000:]}"
    raw = unexpected.replace(":", "")
    assert re.search(rf"aoe: target e11.0 state \S+ netif \S+ mac {raw} sectors 131072", console), (
        console[-3000:]
    )
    assert (
        f"aoe: target e11.0 answered by {unexpected}, a server this box did not record "
        f"(rd.aoe.server={recorded}): a second NAS exporting e11.0, or a spoofer"
    ) in console
