"""Benchmark the storage stacks the installer makes, booted over AoE, side by side in one run.

Two real installed systems, set up as a user does it (aoelab.installed.install_box: the
package, install-entry from the pyz, kernel-install add): Workstation's layout (btrfs on the
AoE partition) and Server's (LV fedora/root, xfs, whose PV is the AoE partition). Each boots
its entry's kernel, initramfs and options from vblade, --runs times, interleaved; the figure is
wall seconds from qemu start to "Reached target multi-user.target" on the serial console.
Goal: Server / Workstation <= 1.1 (the median of each).

Run as root, with the project's venv: .venv/bin/python -m bench.stacks [--runs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from aoelab import disklayout, installed, localboot, qemumonitor, sysimage
from aoelab.vm import accel

GOAL = 1.1
BOOT_TIMEOUT = 600
LAYOUTS = {"btrfs": disklayout.WORKSTATION, "lvm+xfs": disklayout.SERVER}


def say(text: str) -> None:
    print(text, flush=True)


def boot_seconds(box: installed.Box, entry: installed.Entry, workdir: Path) -> float:
    """qemu start to multi-user.target; then the power button, and wait for the poweroff."""
    with installed.running(box, workdir, entry=entry, options=entry.options) as live:
        if live.vm.wait_for(localboot.MULTI_USER, BOOT_TIMEOUT) is None:
            raise SystemExit(
                f"{workdir}: no multi-user.target in {BOOT_TIMEOUT} s:\n{live.vm.text()[-3000:]}"
            )
        seconds = live.vm.elapsed()
        qemumonitor.power_off(live.vm, live.monitor)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="boots of each stack (default 3)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: it makes namespaces, loop devices and VMs")
    work = Path(tempfile.mkdtemp(prefix="bench-stacks.", dir="/var/tmp"))
    try:
        boxes = {}
        for name, layout in LAYOUTS.items():
            start = time.monotonic()
            box = installed.install_box(work / name, layout=layout)
            with sysimage.mounted(box.disk, read_only=True) as target:
                entry = installed.read_entry(target, box.kver, work / name)
            boxes[name] = (box, entry)
            say(f"{name}: installed in {time.monotonic() - start:.0f} s; options {entry.options}")
        say(f"accel {accel()}")
        times: dict[str, list[float]] = {name: [] for name in LAYOUTS}
        for run in range(1, args.runs + 1):
            for name, (box, entry) in boxes.items():
                seconds = boot_seconds(box, entry, work / name / f"boot-{run}")
                times[name].append(seconds)
                say(f"run {run}: {name:8} multi-user.target at {seconds:7.2f} s")
        plain, lvm = (statistics.median(times[name]) for name in LAYOUTS)
        ratio = lvm / plain
        say(
            f"qemu start to multi-user.target, median of {args.runs}: btrfs {plain:.2f} s, "
            f"lvm+xfs {lvm:.2f} s, ratio {ratio:.3f}"
        )
        say(f"goal lvm+xfs / btrfs <= {GOAL}: {'PASS' if ratio <= GOAL else 'FAIL'}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
