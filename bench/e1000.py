"""The e1000 stall, measured: boot an e1000 VM (its link comes up seconds after `aoe` loads)
with root on AoE, alternating two versions of 59aoe in one run:

  current     discover once per link as its carrier comes, then at most once a second and only
              while the disk is missing (what dracut/59aoe does)
  every-pass  discover on every initqueue pass, even once the disk exists
  old         every-pass, and aoetools' modules-load.d entry left in the initramfs so that aoe
              loads early on every interface (as when 3 boots in 14 stalled here)

For each boot: kernel "Link is Up" to the partition scan line (guest printk time), time to root
mounted, and from a capture of AoE frames on the NAS's tap: IDENTIFY requests, ATA requests the
NAS answered, and ATA requests the guest re-sent with the same command and LBA (a retransmit:
the driver's timer ran out, ~16 s after its last ata_id reset it). Run as root:
python -m bench.e1000 [--boots N] [--variants current,every-pass,old]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import struct
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

from aoeboot import wire
from aoelab import dracutdir
from aoelab import pcap as pcap_file
from aoelab.disk import MARKER, make_disk
from aoelab.kernel import Kernel
from aoelab.netns import Namespace
from aoelab.vblade import Vblade
from aoelab.vm import VM, printk_time
from bench import REPO, kernel_with_aoe

EVERY_PASS = """#!/bin/sh
# the old behaviour: discover on every initqueue pass while root is missing
aoe_root=$(cat /tmp/aoe.root 2> /dev/null)
if [ -n "$aoe_root" ] && [ ! -e "$aoe_root" ] && [ -e /dev/etherd/discover ]; then
    echo > /dev/etherd/discover
fi
"""


def module_variant(work: Path, variant: str) -> Path:
    module = work / f"59aoe-{variant}"
    shutil.copytree(REPO / "dracut" / "59aoe", module)
    if variant in ("every-pass", "old"):
        (module / "aoeboot-settled.sh").write_text(EVERY_PASS)
    if variant == "old":
        setup = module / "module-setup.sh"
        kept = [line for line in setup.read_text().splitlines(True) if "aoetools.conf" not in line]
        setup.write_text("".join(kept))
    return module


def ata_figures(frames: list[bytes]) -> dict[str, int]:
    """ATA requests seen on the NAS's tap, which of them the NAS answered, and which unanswered
    ones the guest sent again."""
    requests, answered = [], set()
    for frame in frames:
        try:
            header = wire.parse_header(frame)
        except wire.WireError:
            continue
        if header.command != wire.CMD_ATA:
            continue
        if header.is_response:
            answered.add(header.tag)
        else:
            _aflags, _err, _count, cmd, lba = struct.unpack_from("!BBBB6s", frame, wire.HEADER_LEN)
            requests.append((header.tag, cmd, lba))
    lost = [(cmd, lba) for tag, cmd, lba in requests if tag not in answered]
    later = Counter((cmd, lba) for _, cmd, lba in requests)
    return {
        "identify": sum(1 for _, cmd, _ in requests if cmd == wire.ATA_IDENTIFY),
        "ata": len(requests),
        "unanswered": len(lost),
        # an unanswered request whose command and LBA were sent again: the driver retransmitted
        "resent": sum(1 for key in lost if later[key] > 1),
    }


def boot(work: Path, kernel: Kernel, initrd: Path, name: str) -> dict[str, float]:
    disk = make_disk(work / f"{name}.img")
    with Namespace("aoee1000") as ns:
        ns.add_tap("tap0")
        pcap = work / f"{name}.pcap"
        dump = ns.popen(
            ["tcpdump", "-i", "tap0", "-U", "-w", str(pcap), "ether", "proto", "0x88a2"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)
        with Vblade(ns, 11, 0, "tap0", disk):
            vm = VM(
                ns,
                work / f"{name}.console",
                kernel=kernel.image,
                initrd=initrd,
                append="root=/dev/etherd/e11.0p1",
                nic="e1000",
            )
            with vm:
                found = vm.wait_for(MARKER + r" uptime=([0-9.]+)", 300)
                vm.wait_exit(60)
        dump.terminate()
        dump.wait()
    console = vm.text()
    link = printk_time(r"e1000: \S+ NIC Link is Up", console)
    scan = printk_time(r"etherd/e11\.0: p1", console)
    nan = float("nan")
    return {
        "link_to_disk": (scan - link) if link is not None and scan is not None else nan,
        "root": float(found.group(1)) if found else float("nan"),
        "flaps": console.count("NIC Link is Down"),
        **ata_figures([frame for _, frame in pcap_file.read(pcap)]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boots", type=int, default=10, help="boots per variant")
    parser.add_argument("--variants", default="current,old")
    parser.add_argument("--keep", type=Path, help="keep consoles and captures here")
    args = parser.parse_args()
    kernel = kernel_with_aoe()
    variants = args.variants.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        images = {}
        for variant in variants:
            build = work / f"build-{variant}"
            build.mkdir(exist_ok=True)
            dracutdir.overlay(build, module_variant(build, variant))
            images[variant] = dracutdir.build(build / "initrd.img", kernel.version, build)
        results: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
        for run in range(args.boots):
            for variant in variants:
                r = boot(work, kernel, images[variant], f"{variant}-{run}")
                results[variant].append(r)
                print(
                    f"boot {run + 1:2} {variant:10} link-up to disk {r['link_to_disk']:6.2f} s, "
                    f"root at {r['root']:6.2f} s, IDENTIFY {r['identify']:3}, ATA {r['ata']:4}, "
                    f"unanswered {r['unanswered']}, re-sent {r['resent']}, link flaps "
                    f"{r['flaps']}",
                    flush=True,
                )
    print(f"\n{args.boots} e1000 boots per variant, kernel {kernel.version}")
    for variant, rows in results.items():
        delays = [r["link_to_disk"] for r in rows]
        stalls = sum(1 for d in delays if not d <= 2.0)  # NaN (never came) counts as a stall
        worst = max(delays, key=lambda d: float("inf") if d != d else d)
        print(
            f"{variant:10} link-up to disk: median {statistics.median(delays):.2f} s, max "
            f"{worst:.2f} s; over 2 s: {stalls}/{len(rows)}; IDENTIFY per boot median "
            f"{statistics.median(r['identify'] for r in rows):.0f}; re-sent ATA total "
            f"{sum(r['resent'] for r in rows)}"
        )


if __name__ == "__main__":
    main()
