"""What vblade -s costs, and what leaving it out loses: the real installed system over AoE.

    python -m bench.durability cost [--runs N] [--mib M] [--fsyncs K]
    python -m bench.durability cuts [--unsafe-no-sync] [--cuts N] [--soak S] [--seed X]

cost: one boot, one NIC. vblade runs as `aoeboot nas-config` prints it (-s) and with
--unsafe-no-sync, at MTU 1500 and 9000 (the NAS's link, the box's NIC, vblade started
again so it advertises the new frame, a discovery so the driver takes it), interleaved --runs
times. Each: M MiB written with O_DIRECT, then read back the same way, and K appends of 4 KiB
each fsync'ed, as the box sees them. Reads must not change with -s.

cuts: one boot, vblade behind a NAS page cache that a power cut loses (aoelab/files/nascache.c),
-s as nas-config prints it or, with --unsafe-no-sync, without. A soak runs while the NAS loses
power N times at random moments, back 5 s later each; then a clean power-off, and every record
the box reported synced is looked for on both disks, and the file systems are checked.

Run as root, with the project's venv: .venv/bin/python -m bench.durability cost
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from aoelab import fsck, imagerun, installed, resilience, sysimage

BOOT_TIMEOUT = 900
DATA = f"e{installed.SHELF}.1"


def say(text: str) -> None:
    print(text, flush=True)


def exports(box: installed.Box, durable: bool, volatile: bool = False) -> installed.Exports:
    """Both disks exported as nas-config prints them: with -s, or with --unsafe-no-sync."""
    unsafe = () if durable else ("--unsafe-no-sync",)
    return installed.Exports(
        root_argv=lambda iface: installed.nas_config_argv(
            installed.TARGET, iface, box.disk, *unsafe
        ),
        data_argv=lambda iface: installed.nas_config_argv(DATA, iface, box.data, *unsafe),
        volatile=volatile,
    )


def boot_box(
    work: Path, steps: Mapping[str, Sequence[str]]
) -> tuple[installed.Box, installed.Entry]:
    started = time.monotonic()
    box = installed.install_box(
        work / "box", prepare=lambda target: resilience.install(target, steps)
    )
    say(f"installed the box in {time.monotonic() - started:.0f} s")
    with sysimage.mounted(box.disk, read_only=True) as target:
        return box, installed.read_entry(target, box.kver, work)


def cost(args: argparse.Namespace, work: Path) -> None:
    steps = {"load": [resilience.PROGRAM, "/dev/ttyS1", "--throughput", str(args.mib)]}
    box, entry = boot_box(work, steps)
    figures: dict[tuple[int, bool], dict[str, list[float]]] = {}
    with installed.running(
        box, work / "boot", entry=entry, options=entry.options, exports=exports(box, durable=True)
    ) as live:
        events = resilience.Events(live.probe, lambda: live.vm.running)
        try:
            events.wait("started", BOOT_TIMEOUT)
            for run in range(args.runs):
                for mtu in (1500, 9000):
                    resilience.answer(live, events, f"mtu-{mtu}-{run}", str(mtu), "mtu")
                    for tap in (live.nas_iface, *live.taps):
                        live.ns.run(["ip", "link", "set", "dev", tap, "mtu", str(mtu)])
                    for durable in (True, False):
                        live.stop_nas()
                        live.exports = exports(box, durable)
                        live.start_nas()
                        resilience.answer(
                            live, events, f"discover-{mtu}-{durable}-{run}", "", "discovered"
                        )
                        time.sleep(1)  # the driver has taken the new frame size
                        name = f"{mtu}-{'sync' if durable else 'nosync'}-{run}"
                        moved = resilience.answer(live, events, f"tp-{name}", "", "throughput")
                        synced = resilience.answer(
                            live, events, f"fsync-{name}", str(args.fsyncs), "fsync"
                        )
                        row = figures.setdefault((mtu, durable), {})
                        row.setdefault("write", []).append(args.mib / float(moved.words[2]))
                        row.setdefault("read", []).append(args.mib / float(moved.words[3]))
                        row.setdefault("fsync", []).append(float(synced.get("median_ms")))
                        row.setdefault("payload", []).append(float(moved.get("payload")))
                        say(
                            f"  run {run} MTU {mtu} {'-s' if durable else 'no -s'}: "
                            f"{' '.join(moved.words[1:])}; {' '.join(synced.words[2:])}"
                        )
        finally:
            events.close()
            live.press_power_button()
            live.vm.wait_exit(300)
    say(f"data volume, {args.mib} MiB O_DIRECT, medians of {args.runs} interleaved runs:")
    for mtu in (1500, 9000):
        sync, nosync = figures[(mtu, True)], figures[(mtu, False)]
        med = {key: (statistics.median(sync[key]), statistics.median(nosync[key])) for key in sync}
        say(
            f"  MTU {mtu} (payload {med['payload'][0]:.0f} B per frame): write "
            f"{med['write'][0]:.1f} MiB/s with -s, {med['write'][1]:.1f} without "
            f"({med['write'][0] / med['write'][1]:.2f}x); read {med['read'][0]:.1f} against "
            f"{med['read'][1]:.1f} ({med['read'][0] / med['read'][1]:.2f}x, goal: unchanged); "
            f"4 KiB fsync {med['fsync'][0]:.2f} ms against {med['fsync'][1]:.2f} ms"
        )


def cuts(args: argparse.Namespace, work: Path) -> int:
    steps = {"load": [resilience.PROGRAM, "/dev/ttyS1"]}
    box, entry = boot_box(work, steps)
    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    how = exports(box, durable=not args.unsafe_no_sync, volatile=True)
    say(f"vblade {'without' if args.unsafe_no_sync else 'with'} -s; random.Random({seed})")
    with installed.running(
        box, work / "boot", entry=entry, options=entry.options, exports=how
    ) as live:
        events = resilience.Events(live.probe, lambda: live.vm.running)
        try:
            events.wait("rec", BOOT_TIMEOUT, count=5)
            done, soak = resilience.power_cuts(
                live, events, args.cuts, args.soak, random.Random(seed)
            )
            for cut in done:
                say(
                    f"  cut after record {cut.after_record}; NAS back -> next synced record "
                    f"{cut.back_to_record:.2f} s"
                )
            say(f"  soak across the cuts: {' '.join(soak.words)}")
        finally:
            events.close()
            live.press_power_button()
            code = live.vm.wait_exit(300)
    reported = events.last_record()
    say(f"power-off: qemu exit {code}; records the box reported synced: {reported}")
    lost = False
    try:
        found = resilience.records_on_disks(box)
    except imagerun.SysImageError as err:  # what -s prevents: a file system that cannot mount
        found, lost = {}, True
        say(f"  the records cannot be read: {str(err).splitlines()[0]}")
    for where, records in found.items():
        missing = reported - len(records.numbers)
        lost |= missing > 0 or not records.contiguous or bool(records.damaged)
        say(
            f"  {where}: {len(records.numbers)} records, contiguous {records.contiguous}, "
            f"damaged {len(records.damaged)}, missing {max(missing, 0)}"
        )
    for where, check in fsck.fsck(box.disk).items():
        lost |= not check.clean
        say(
            f"  fsck {where}: {'clean' if check.clean else 'NOT clean'}"
            + ("" if check.clean else f"\n    {check.output.strip()[-600:]}")
        )
    data = installed.fsck_data(box.data)
    say(f"  fsck data volume: {'clean' if data.returncode == 0 else 'NOT clean'}")
    say(f"verdict: {'LOST what the box was told is on disk' if lost else 'nothing lost'}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    cost_args = sub.add_parser("cost", help="throughput and fsync latency, -s against not")
    cost_args.add_argument("--runs", type=int, default=3)
    cost_args.add_argument("--mib", type=int, default=16, help="MiB per throughput run")
    cost_args.add_argument("--fsyncs", type=int, default=50, help="4 KiB fsyncs per run")
    cut_args = sub.add_parser("cuts", help="NAS power cuts under a soak")
    cut_args.add_argument(
        "--unsafe-no-sync", action="store_true", help="vblade without -s: the old command line"
    )
    cut_args.add_argument("--cuts", type=int, default=3)
    cut_args.add_argument("--soak", type=float, default=40)
    cut_args.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aoeboot-bench-durability.") as tmp:
        if args.what == "cost":
            cost(args, Path(tmp))
            return 0
        return cuts(args, Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
