"""A second NIC with no cable, measured: boot a VM with root on AoE, with one NIC and with two
(the second's carrier off from power-on, qemu's set_link), alternating two versions of the module
in one run:

  current  aoeboot-up ends at once; the settled hook discovers on each NIC as its carrier comes
  old      aoe-up, as it was called, waited in an initqueue job up to 30 s for every NIC's
           carrier (the whole module at commit 4d0342f)

For each boot, by the guest's clock: the aoe driver loaded to the disk's partition scan, and to
root mounted (virtio's NICs have carrier from their probe, before aoe loads). Run as root:
python -m bench.second_nic [--boots N]
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

from aoelab import dracutdir
from aoelab.disk import MARKER, make_disk
from aoelab.kernel import Kernel
from aoelab.netns import Namespace
from aoelab.qemumonitor import monitor_command
from aoelab.vblade import Vblade
from aoelab.vm import VM, printk_time
from bench import REPO, kernel_with_aoe

OLD = "4d0342f"  # the last module (then dracut/95aoe) whose aoe-up waited for carrier
MACS = ("52:54:00:12:34:56", "52:54:00:12:34:57")


def module_variant(work: Path, variant: str) -> Path:
    """The module as it is, or (old) the whole module as it was at OLD: its files have been
    renamed since, so they cannot be mixed with today's."""
    module = work / f"59aoe-{variant}"
    if variant != "old":
        shutil.copytree(REPO / "dracut" / "59aoe", module)
        return module
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", OLD, "dracut/95aoe"], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(work)], input=archive, check=True)
    (work / "dracut/95aoe").rename(module)
    return module


def boot(work: Path, kernel: Kernel, initrd: Path, name: str, nics: int) -> dict[str, float]:
    disk = make_disk(work / f"{name}.img")
    monitor = work / f"{name}.monitor"
    extra = ["-monitor", f"unix:{monitor},server=on,wait=off"]
    if nics == 2:
        extra += [
            "-netdev",
            "tap,id=n1,ifname=tap1,script=no,downscript=no",
            "-device",
            f"virtio-net-pci,netdev=n1,mac={MACS[1]}",
        ]
    with Namespace("aoe2nic") as ns:
        ns.add_tap("tap0")
        ns.add_tap("tap1")
        ns.add_bridge("br0", "02:aa:00:00:00:01", ["tap0", "tap1"])
        with Vblade(ns, 11, 0, "br0", disk):
            vm = VM(
                ns,
                work / f"{name}.console",
                kernel=kernel.image,
                initrd=initrd,
                append=f"root=/dev/etherd/e11.0p1 rd.aoe.iface={','.join(MACS[:nics])}",
                extra=extra,
            )
            with vm:
                if nics == 2:
                    monitor_command(monitor, "set_link n1 off")
                found = vm.wait_for(MARKER + r" uptime=([0-9.]+)", 300)
                vm.wait_exit(60)
    console = vm.text()
    loaded = printk_time(r"aoe: AoE v\d+ initialised", console)
    scan = printk_time(r"etherd/e11\.0: p1", console)
    nan = float("nan")
    if loaded is None:
        return {"disk": nan, "root": nan}
    return {
        "disk": scan - loaded if scan is not None else nan,
        "root": float(found.group(1)) - loaded if found else nan,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boots", type=int, default=3, help="boots per variant and NIC count")
    parser.add_argument("--keep", type=Path, help="keep consoles here")
    args = parser.parse_args()
    kernel = kernel_with_aoe()
    cases = [(variant, nics) for variant in ("current", "old") for nics in (1, 2)]
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        images = {}
        for variant in ("current", "old"):
            build = work / f"build-{variant}"
            build.mkdir(exist_ok=True)
            dracutdir.overlay(build, module_variant(build, variant))
            images[variant] = dracutdir.build(build / "initrd.img", kernel.version, build)
        results: dict[tuple[str, int], list[dict[str, float]]] = {case: [] for case in cases}
        for run in range(args.boots):
            for variant, nics in cases:
                name = re.sub(r"\W", "-", f"{variant}-{nics}nic-{run}")
                r = boot(work, kernel, images[variant], name, nics)
                results[(variant, nics)].append(r)
                print(
                    f"boot {run + 1:2} {variant:8} {nics} NIC{'s' if nics > 1 else ' '}: aoe "
                    f"loaded -> disk {r['disk']:6.2f} s, -> root mounted {r['root']:6.2f} s",
                    flush=True,
                )
    print(f"\n{args.boots} boots per case, kernel {kernel.version}; the second NIC has no carrier")
    for (variant, nics), rows in results.items():
        print(
            f"{variant:8} {nics} NIC{'s' if nics > 1 else ' '}: aoe loaded -> disk median "
            f"{statistics.median(r['disk'] for r in rows):.2f} s, -> root mounted median "
            f"{statistics.median(r['root'] for r in rows):.2f} s (max "
            f"{max(r['root'] for r in rows):.2f} s)"
        )


if __name__ == "__main__":
    main()
