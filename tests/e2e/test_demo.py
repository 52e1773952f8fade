"""The README's first command, end to end: its report is what a user reads."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.helpers import REPO, require_programs, require_root

pytestmark = [pytest.mark.vm, pytest.mark.dracut]


def test_demo_boots_the_installed_system_over_aoe():
    require_root()
    require_programs("kernel-install", "dracut", "dnsmasq", "vblade", "qemu-system-x86_64")
    out = subprocess.run(
        [sys.executable, "-m", "aoelab.demo"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=1200,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    report = out.stdout.split("---- aoeboot demo report ----")[1]
    assert "result: OK, the box booted its root over AoE" in report
    assert re.search(r"clean shutdown \(root remounted read-only\)\s+yes", report)
    assert re.search(r"guest: kernel start to root mounted\s+\d+\.\d s", report)
    assert "set the AoE options in /etc/kernel/cmdline" in out.stdout  # install-entry ran
    assert "--- published: done, ['" in out.stdout  # kernel-install's plugin published
    assert "root=/dev/etherd/e11.0p1" in out.stdout.split("--- a0e0b007")[1]  # the BLS entry
