"""Benchmark: from the NAS being back to the box's first completed write, on the wire.

The real installed system (aoelab.installed) with two NICs on the NAS's bridge, as
bench/resilience.py boots it; inside, aoelab-resilience writes and syncs a record a second.
vblade is stopped for --outage seconds, --runs times, while tcpdump captures the AoE frames on
the NAS's bridge. For each run it prints, from the capture:
- when vblade was up: its first frame (the Query Config announcement it sends on start);
- the first write (an ATA request carrying data) that vblade answered after that, against the
  box's retransmit interval (the median gap between its retransmits during the outage): the
  goal is within one interval;
- the box's first synced record (both fsyncs returned), as the host saw it, and the longest
  time in between when nothing was on the wire (the box had nothing outstanding).

Run as root, with the project's venv: .venv/bin/python -m bench.nas_back [--runs N] [--outage S]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from aoeboot import wire
from aoelab import installed, resilience, sysimage
from aoelab import pcap as pcap_file

BOOT_TIMEOUT = 900


@dataclass(frozen=True)
class Frame:
    at: float  # wall clock, as tcpdump stamps it
    response: bool
    slot: int
    command: int
    length: int


def frames(pcap: Path) -> list[Frame]:
    """The AoE frames of the capture. Read by hand, not by wire.parse_header: the announcement
    vblade sends on start carries AoE version 0, which that parser rightly refuses."""
    return [
        Frame(at, bool(frame[14] & wire.FLAG_RESPONSE), frame[18], frame[19], len(frame))
        for at, frame in pcap_file.read(pcap)
        if len(frame) >= wire.HEADER_LEN
    ]


def run_figures(
    captured: list[Frame], stopped: float, spawned: float, record: float
) -> tuple[float, float, float, float]:
    """(vblade up after spawn, first write answered after vblade up, the box's retransmit
    interval, longest quiet time before the record), all in seconds."""
    up = next(
        f.at
        for f in captured
        if f.at >= spawned and f.response and f.command == wire.CMD_QUERY_CONFIG
    )
    # an answered write: a response to an ATA request that carried data, so it carries none
    answered = next(
        f.at
        for f in captured
        if f.at >= up and f.response and f.command == wire.CMD_ATA and f.length <= 64
    )
    retransmits = [
        f.at
        for f in captured  # the system disk's (e11.0)
        if stopped < f.at < spawned and not f.response and f.slot == 0
    ]
    interval = statistics.median(b - a for a, b in zip(retransmits, retransmits[1:]))
    on_wire = [f.at for f in captured if up <= f.at <= record]
    quiet = max((b - a for a, b in zip(on_wire, on_wire[1:])), default=0.0)
    return up - spawned, answered - up, interval, quiet


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--outage", type=float, default=8, help="seconds the NAS is away")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aoeboot-bench-nas-back.") as tmp:
        work = Path(tmp)
        steps = {"load": [resilience.PROGRAM, "/dev/ttyS1"]}
        box = installed.install_box(
            work / "box",
            prepare=lambda target: resilience.install(target, steps),
            macs=(installed.MAC, installed.MAC2),
        )
        with sysimage.mounted(box.disk, read_only=True) as target:
            entry = installed.read_entry(target, box.kver, work)
        pcap = work / "aoe.pcap"
        marks = []
        with installed.running(
            box,
            work / "boot",
            entry=entry,
            options=entry.options,
            macs=(installed.MAC, installed.MAC2),
        ) as live:
            events = resilience.Events(live.probe, lambda: live.vm.running)
            try:
                events.wait("rec", BOOT_TIMEOUT, count=5)
                capture = live.ns.popen(
                    [
                        "tcpdump",
                        "-i",
                        live.nas_iface,
                        "-w",
                        str(pcap),
                        "-U",
                        "ether",
                        "proto",
                        "0x88a2",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                time.sleep(2)  # tcpdump is listening
                for _ in range(args.runs):
                    events.wait("rec", 60, after=time.monotonic())
                    live.stop_nas()
                    stopped = time.time()
                    time.sleep(args.outage)
                    spawned = time.time()
                    live.start_nas()
                    back = time.monotonic()
                    first = events.wait("rec", 120, after=back)[0]
                    marks.append((stopped, spawned, time.time() - (time.monotonic() - first.host)))
                    time.sleep(3)
                capture.terminate()
                capture.wait()
            finally:
                events.close()
                live.press_power_button()
                live.vm.wait_exit(300)
        captured = frames(pcap)
    print(
        f"NAS back -> first completed write, on the wire (vblade stopped {args.outage:g} s, "
        f"frames captured on the NAS's bridge):"
    )
    for stopped, spawned, record in marks:
        up, answered, interval, quiet = run_figures(captured, stopped, spawned, record)
        verdict = "within" if answered <= interval else "NOT within"
        print(
            f"  vblade up {up:.3f} s after start; first write answered {answered:.3f} s later: "
            f"{verdict} one retransmit interval ({interval:.3f} s); first synced record "
            f"{record - spawned - up:.3f} s after vblade up, nothing on the wire for "
            f"{quiet:.3f} s of it"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
