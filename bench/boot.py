"""Benchmark boot: the same VM, kernel and systemd initramfs (built with our module), root on AoE
(vblade on a tap) and root on a local virtio disk with the same filesystem, alternating, several
times in one run. Prints kernel-start-to-root-mounted (guest printk time of the ext4 mount) and
the ratio AoE / local. Goal (issue 3): at most 1.15. Run as root: python -m bench.boot [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from aoelab import dracutdir
from aoelab.disk import MARKER, make_disk
from aoelab.kernel import Kernel
from aoelab.netns import Namespace
from aoelab.vblade import Vblade
from aoelab.vm import VM, accel, printk_time
from bench import kernel_with_aoe


def boot(work: Path, kernel: Kernel, initrd: Path, aoe: bool, run: int) -> float:
    disk = make_disk(work / f"root-{run}-{aoe}.img")
    with Namespace("aoebench") as ns:
        ns.add_tap("tap0")
        blade = Vblade(ns, 11, 0, "tap0", disk) if aoe else None
        try:
            vm = VM(
                ns,
                work / "console.log",
                kernel=kernel.image,
                initrd=initrd,
                append="root=/dev/etherd/e11.0p1" if aoe else "root=/dev/vda1",
                disk=None if aoe else disk,
            )
            with vm:
                if not vm.wait_for(MARKER, 300):
                    raise SystemExit(
                        f"boot failed ({'aoe' if aoe else 'local'}):\n{vm.text()[-2000:]}"
                    )
                vm.wait_exit(60)
            mounted = printk_time(r"EXT4-fs \(\S+\): mounted filesystem", vm.text())
            if mounted is None:
                raise SystemExit("no ext4 mount line on the console")
            return mounted
        finally:
            if blade:
                blade.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    kernel = kernel_with_aoe()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        initrd = dracutdir.build(work / "initrd.img", kernel.version, work, systemd=True)
        times: dict[str, list[float]] = {"aoe": [], "local": []}
        for run in range(args.runs):
            for name in ("aoe", "local"):
                times[name].append(boot(work, kernel, initrd, name == "aoe", run))
                print(
                    f"run {run + 1}: {name:5} root mounted at {times[name][-1]:6.2f} s", flush=True
                )
    aoe, local = statistics.median(times["aoe"]), statistics.median(times["local"])
    print(f"accel {accel()}, {args.runs} boots each, kernel {kernel.version}")
    print(f"kernel start to root mounted, median: AoE {aoe:.2f} s, local virtio {local:.2f} s")
    print(
        f"ratio AoE / local: {aoe / local:.3f} "
        f"(goal <= 1.15: {'met' if aoe / local <= 1.15 else 'MISSED'})"
    )


if __name__ == "__main__":
    main()
