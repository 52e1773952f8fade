"""The living-room box: the real installed system over AoE, NetworkManager managing its NIC.

One boot:
1. The NAS goes silent while the box idles with everything cached: vblade stopped, and the time
   until aoeboot-watch's warning shows on the box's console (goal: within 60 s), then vblade
   started again and the time until it says the NAS answers.
2. Suspend to RAM --suspends times (page cache dropped before each): from the wake-up
   (qemu's system_wakeup) to the box's first synced write on root after it (goal: <= 2 s).

Run as root, with the project's venv: .venv/bin/python -m bench.living_room [--suspends N]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from aoelab import datadisk, installed, suspend, sysimage

BOOT_TIMEOUT = 900
IDLE = "AOELAB-IDLE"
SILENT = re.compile(r"aoeboot: the NAS is silent")
AGAIN = re.compile(r"aoeboot: the NAS answers for \S+ again")


def say(text: str) -> None:
    print(text, flush=True)


def console_shows(
    live: installed.Live, pattern: re.Pattern[str], after: int, timeout: float
) -> float:
    """Host time at which the console, past offset `after`, first matches `pattern`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pattern.search(live.vm.text()[after:]):
            return time.monotonic()
        time.sleep(0.1)
    raise SystemExit(f"bench: the console never showed {pattern.pattern!r}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suspends", type=int, default=3)
    args = parser.parse_args()
    steps = {
        # everything the box does from now on is cached: the NAS may go
        "idle": ["sh", "-c", f"sync; echo {IDLE} > /dev/ttyS1; sleep 150"],
        "suspend": suspend.step(args.suspends, installed.MAC, installed.NAS_MOUNT),
    }
    with tempfile.TemporaryDirectory(prefix="aoeboot-bench-living-room.") as tmp:
        work = Path(tmp)
        box = installed.install_box(
            work / "box",
            prepare=lambda target: installed.write_probe(
                target, steps, mounts=[datadisk.DATA_MOUNTPOINT]
            ),
        )
        (box.nas / suspend.WANTED).write_text("")
        with sysimage.mounted(box.disk, read_only=True) as target:
            entry = installed.read_entry(target, box.kver, work)
        with installed.running(box, work / "boot", entry=entry, options=entry.options) as live:
            deadline = time.monotonic() + BOOT_TIMEOUT
            while IDLE not in live.probed():
                if time.monotonic() > deadline:
                    raise SystemExit("bench: the box never came up")
                time.sleep(0.5)
            time.sleep(2)
            seen = len(live.vm.text())
            live.stop_nas()
            stopped = time.monotonic()
            silent = console_shows(live, SILENT, seen, 180) - stopped
            live.start_nas()
            started = time.monotonic()
            again = console_shows(live, AGAIN, seen, 120) - started
            say(
                f"NAS silent (vblade stopped, the box idle) -> warning on the console: "
                f"{silent:.1f} s (goal: within 60 s); vblade back -> 'answers again': "
                f"{again:.1f} s"
            )
            woke = suspend.wake_each(
                live.monitor,
                live.probe,
                args.suspends,
                lambda: live.vm.proc is not None and live.vm.running,
            )
            say(
                f"wake-up -> first synced write on root, {args.suspends} suspends: "
                f"{' '.join(f'{t:.2f}' for t in woke)} s, median {statistics.median(woke):.2f} s"
                " (goal: <= 2 s)"
            )
            live.vm.wait_exit(300)
    return 0


if __name__ == "__main__":
    sys.exit(main())
