"""Benchmark a box whose root is on AoE, with two NICs on the NAS's network: one boot.

The real installed system (aoelab.installed, `install-entry --iface` naming both NICs, what it
sets up by default), vblade serving the system disk and the data volume on a bridge that both
of the box's links are ports of. Inside, aoelab-resilience writes and syncs a record a second
all along.

1. Soak (--soak SECONDS, 0 to skip): parallel writers and readers verified by checksum, and a
   build-like load, on the root and the data volume; then the console is searched for I/O
   errors and oopses. The long version of the CI test's 60 s.
2. Write throughput, one path against two, same VM, same vblade, interleaved --runs times:
   --mib MiB written with O_DIRECT to the data volume. Two paths: both links up. One path: the
   second link down on the host side (after a warm-up write, so that the driver has given up on
   it). After each one-path run the link comes back and the driver is asked to discover, so the
   next run has two paths again. No goal under TCG: what the second path gives you.
3. NAS back to the first synced record: vblade stopped for --outage seconds, --runs times; from
   vblade running again to the box's next record (both fsyncs returned), as the host sees it
   on the box's second serial port and on the box's own clock (offset from the records before
   the outage; a serial port backed up with retransmit messages delays only the former),
   against the driver's retransmit timer: rto() from its round-trip figures (debugfs, read in
   the box just before), checked every TIMERTICK (HZ/10 = 0.1 s), and the intervals between
   the retransmits the driver reported (/dev/etherd/err) during the outage. This includes the
   box's own file system work after the NAS is back; bench/nas_back.py measures the goal (the
   first write answered within one retransmit interval) on the wire.

Run as root, with the project's venv: .venv/bin/python -m bench.resilience [--soak S] [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from aoelab import installed, resilience, sysimage

BOOT_TIMEOUT = 900
TICK = 0.1  # the driver's TIMERTICK: the retransmit timer runs every HZ/10


def say(text: str) -> None:
    print(text, flush=True)


def throughput(live: installed.Live, events: resilience.Events, runs: int, mib: int) -> None:
    first, second = live.taps
    two: list[float] = []
    one: list[float] = []
    for run in range(runs):
        event = resilience.answer(live, events, f"two-{run}", "throughput", "throughput")
        two.append(mib / float(event.words[2]))
        live.set_link(second, up=False)
        resilience.answer(live, events, f"warm-{run}", "throughput", "throughput")
        event = resilience.answer(live, events, f"one-{run}", "throughput", "throughput")
        one.append(mib / float(event.words[2]))
        live.set_link(second, up=True)
        resilience.answer(live, events, f"discover-{run}", "discover", "discovered")
        if (
            resilience.wait_for_traffic(
                lambda: live.counters(second), 64 << 10, 120, lambda: live.vm.running
            )
            is None
        ):
            say(f"  (run {run}: {second} not used again within 120 s)")
    say(f"write throughput, {mib} MiB O_DIRECT to the data volume, MiB/s per run:")
    say(f"  two paths: {' '.join(f'{x:.1f}' for x in two)}  median {statistics.median(two):.1f}")
    say(f"  one path:  {' '.join(f'{x:.1f}' for x in one)}  median {statistics.median(one):.1f}")
    say(f"  two / one: {statistics.median(two) / statistics.median(one):.2f} (no goal under TCG)")


def recovery(live: installed.Live, events: resilience.Events, runs: int, outage: float) -> None:
    rows = []
    for run in range(runs):
        answer = resilience.answer(live, events, f"rto-{run}", "rto", "rto").words[1]
        if answer == "none":
            raise SystemExit("bench: the box has no aoe debugfs: no retransmit timeout to show")
        rto = float(answer)
        events.wait("rec", 60, after=time.monotonic())
        live.stop_nas()
        stopped = time.monotonic()
        time.sleep(outage)
        live.start_nas()
        back = time.monotonic()
        first = events.wait("rec", 120, after=back)[0]
        rexmits = [
            e.guest
            for e in events.named("rexmit", after=stopped)
            if e.words and e.words[0] == "e11.0" and e.host <= back
        ]
        gaps = [b - a for a, b in zip(rexmits, rexmits[1:])]
        interval = max(rto, TICK)
        # The same on the box's clock, which no serial-port delay skews: the host's clock minus
        # the box's, at its least over the records before the outage (the fastest to arrive).
        offset = min(
            e.host - e.guest for e in events.named("rec") if stopped - 30 < e.host < stopped
        )
        rows.append(
            (
                first.host - back,
                first.guest - (back - offset),
                rto,
                statistics.median(gaps) if gaps else None,
                interval,
                len(rexmits),
            )
        )
    say(
        f"NAS back -> first synced record (vblade stopped {outage:g} s), as the host saw it "
        "(the box's serial port) and on the box's clock:"
    )
    for took, on_box, rto, gap, interval, count in rows:
        measured = f"{gap:.3f} s" if gap is not None else "none reported"
        verdict = "within" if on_box <= interval else "NOT within"
        say(
            f"  host {took:.3f} s, box {on_box:.3f} s; driver rto {rto:.3f} s, timer tick "
            f"{TICK} s, {count} retransmits of e11.0 every {measured}: {verdict} one "
            f"retransmit interval ({interval:.3f} s)"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--soak", type=float, default=300, help="soak seconds (0: none)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--mib", type=int, default=32, help="MiB per throughput run")
    parser.add_argument("--outage", type=float, default=20, help="seconds the NAS is away")
    parser.add_argument("--log", type=Path, help="keep the box's events (its serial port) here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aoeboot-bench-resilience.") as tmp:
        work = Path(tmp)
        steps = {
            "load": [
                resilience.PROGRAM,
                "/dev/ttyS1",
                "--soak",
                str(args.soak),
                "--throughput",
                str(args.mib),
            ]
        }
        started = time.monotonic()
        box = installed.install_box(
            work / "box",
            prepare=lambda target: resilience.install(target, steps),
            macs=(installed.MAC, installed.MAC2),
        )
        say(f"installed the box in {time.monotonic() - started:.0f} s")
        with sysimage.mounted(box.disk, read_only=True) as target:
            entry = installed.read_entry(target, box.kver, work)
        with installed.running(
            box,
            work / "boot",
            entry=entry,
            options=entry.options,
            macs=(installed.MAC, installed.MAC2),
        ) as live:
            events = resilience.Events(live.probe, lambda: live.vm.running)
            try:
                events.wait("started", BOOT_TIMEOUT)
                if args.soak > 0:
                    soak = events.wait("soak", args.soak * 10 + 600)[0]
                    say(f"soak {args.soak:g} s: {' '.join(soak.words)}")
                throughput(live, events, args.runs, args.mib)
                recovery(live, events, args.runs, args.outage)
            finally:
                events.close()
                live.press_power_button()
                live.vm.wait_exit(300)
                if args.log:
                    args.log.write_text(live.probed())
        bad = resilience.console_findings(live.vm.text()).bad
        say(
            f"console: {len(bad)} lines with I/O errors, oopses or hung tasks"
            + "".join(f"\n  {line}" for line in bad[:20])
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
