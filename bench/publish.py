"""Benchmark publishing: the same kernel + initramfs (the installed Debian ones, else random data
of the same size) published with aoeboot to a directory, and copied with plain `cp` and `rsync`,
alternating, in one run. Prints the ratio (goal <= 1.1) and the bytes aoeboot sends on an
unchanged re-publish (goal 0).  python -m bench.publish [--runs N]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from aoeboot import publish
from aoeboot.config import BootConfig, Config, PublishConfig
from aoeboot.kver import sort_key
from aoeboot.target import Target

OPTIONS = ("ro", "root=/dev/etherd/e11.0p1")


def inputs(work: Path) -> tuple[Path, Path, str]:
    kernels = sorted(
        Path("/boot").glob("vmlinuz-*"), key=lambda p: sort_key(p.name[len("vmlinuz-") :])
    )
    if kernels:
        kver = kernels[-1].name[len("vmlinuz-") :]
        initrd = Path("/boot") / f"initrd.img-{kver}"
        if initrd.exists():
            kernel = work / "vmlinuz"
            shutil.copy(kernels[-1], kernel)
            shutil.copy(initrd, work / "initrd")
            return kernel, work / "initrd", kver
    (work / "vmlinuz").write_bytes(bytes(8 << 20))
    (work / "initrd").write_bytes(bytes(60 << 20))
    return work / "vmlinuz", work / "initrd", "6.1.0-0-amd64"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        kernel, initrd, kver = inputs(work)
        size = kernel.stat().st_size + initrd.stat().st_size
        times: dict[str, list[float]] = {"aoeboot": [], "cp": [], "rsync": []}
        for run in range(args.runs):
            dest = work / f"nas-{run}"
            (dest / "aoeboot").mkdir(parents=True)  # the NAS's; publish never makes it
            config = Config(
                BootConfig(Target(11, 0, 1)), PublishConfig(str(dest / "aoeboot"), host="box")
            )
            for name in times:
                target = dest / name
                start = time.perf_counter()
                if name == "aoeboot":
                    publish.publish_kernel(
                        publish.destination(config), config, "box", kver, kernel, initrd, OPTIONS
                    )
                elif name == "cp":
                    target.mkdir(parents=True)
                    subprocess.run(["cp", str(kernel), str(initrd), str(target)], check=True)
                    subprocess.run(["sync", "-f", str(target)], check=True)
                else:
                    target.mkdir(parents=True)
                    subprocess.run(
                        ["rsync", str(kernel), str(initrd), str(target) + "/"], check=True
                    )
                    subprocess.run(["sync", "-f", str(target)], check=True)
                times[name].append(time.perf_counter() - start)
        again = publish.destination(config)
        publish.publish_kernel(again, config, "box", kver, kernel, initrd, OPTIONS)
    medians = {name: statistics.median(t) for name, t in times.items()}
    print(f"publishing {size / 2**20:.1f} MiB (kernel {kver} + initramfs), median of {args.runs}:")
    for name, median in medians.items():
        print(f"  {name:8} {median * 1000:8.1f} ms")
    for other in ("cp", "rsync"):
        ratio = medians["aoeboot"] / medians[other]
        print(
            f"ratio aoeboot / {other} + sync: {ratio:.2f} "
            f"(goal <= 1.1: {'met' if ratio <= 1.1 else 'MISSED'})"
        )
    print(
        f"unchanged re-publish sent {again.sent_bytes} bytes (goal 0: "
        f"{'met' if again.sent_bytes == 0 else 'MISSED'})"
    )


if __name__ == "__main__":
    main()
