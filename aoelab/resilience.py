"""The box under a user's load while the NAS goes away, a link goes down, or both: the guest's
side is files/aoelab-resilience (installed into the box by `install`); this is the host's side,
shared by tests/e2e/test_resilience.py and bench/resilience.

The guest reports events on its second serial port (the probe log): "AOELAB-EV NAME ... t=T".
`Events` follows that file from a thread and stamps every event with the host's monotonic time
when it appeared, so host actions (vblade stopped, started) and guest progress share one clock.
"""

from __future__ import annotations

import hashlib
import random
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from aoelab import datadisk, installed, loopdev, sysimage

PROGRAM = "/usr/local/sbin/aoelab-resilience"
ROOT_RECORDS = "var/lib/aoelab/records"  # in the root subvolume
DATA_RECORDS = "aoelab-records"  # at the top of the data volume (/srv/data)
CTL = "aoelab-ctl"  # in the NAS share: the host's requests for throughput runs
EVENT = re.compile(r"AOELAB-EV (\S+)(.*?) t=([0-9.]+)\r?$", re.M)
# What must never be on the box's console: I/O errors, a file system giving up, the driver
# giving up on a disk, a kernel oops or warning.
BAD_CONSOLE = (
    "I/O error",
    "Buffer I/O",
    "EXT4-fs error",
    "BTRFS error",
    "BTRFS critical",
    "Aborting journal",
    "closewait",
    "Oops",
    "BUG:",
    "Call Trace",
    "WARNING: CPU",
    "soak-error",
)


def install(target: Path, steps: Mapping[str, Sequence[str]]) -> None:
    """The guest program and a probe that runs `steps` (the last one may be the program)."""
    program = target / PROGRAM.lstrip("/")
    program.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(installed.FILES / "aoelab-resilience", program)
    program.chmod(0o755)
    installed.write_probe(target, steps, mounts=[datadisk.DATA_MOUNTPOINT])


@dataclass(frozen=True)
class Event:
    host: float  # the host's monotonic time when the line appeared
    name: str
    words: tuple[str, ...]
    guest: float  # the box's monotonic time when it said it

    def get(self, key: str) -> str:
        for word in self.words:
            name, _, value = word.partition("=")
            if name == key:
                return value
        raise KeyError(f"{key} not in {self}")


class Events:
    """The guest's events as they arrive, each stamped with the host's clock."""

    def __init__(self, path: Path, alive: Callable[[], bool]) -> None:
        self.path, self.alive = path, alive
        self.seen: list[Event] = []
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        offset = 0
        pending = ""
        while not self._done.is_set():
            try:
                with open(self.path, "rb") as handle:
                    handle.seek(offset)
                    chunk = handle.read()
            except FileNotFoundError:
                chunk = b""
            now = time.monotonic()
            offset += len(chunk)
            pending += chunk.decode(errors="replace")
            lines = pending.split("\n")
            pending = lines.pop()
            with self._lock:
                for line in lines:
                    found = EVENT.search(line)
                    if found:
                        self.seen.append(
                            Event(
                                now,
                                found.group(1),
                                tuple(found.group(2).split()),
                                float(found.group(3)),
                            )
                        )
            time.sleep(0.02)

    def close(self) -> None:
        self._done.set()
        self._thread.join()

    def named(self, name: str, after: float = 0.0) -> list[Event]:
        with self._lock:
            return [e for e in self.seen if e.name == name and e.host >= after]

    def wait(
        self,
        name: str,
        timeout: float,
        after: float = 0.0,
        count: int = 1,
        watch: Callable[[], None] | None = None,
    ) -> list[Event]:
        """Until `count` events `name` arrived after host time `after`; AssertionError when the
        box stops or time runs out. `watch` is called every half second (a StallWatch's check,
        which raises GuestFroze)."""
        deadline = time.monotonic() + timeout
        watched = 0.0
        while time.monotonic() < deadline:
            found = self.named(name, after)
            if len(found) >= count:
                return found
            if not self.alive():
                break
            if watch is not None and time.monotonic() - watched >= 0.5:
                watch()
                watched = time.monotonic()
            time.sleep(0.05)
        said = self.path.read_text(errors="replace")[-1500:] if self.path.exists() else ""
        raise AssertionError(
            f"no {count} '{name}' event(s) within {timeout:.0f} s "
            f"(box running: {self.alive()}; last events: {self.seen[-5:]}; "
            f"the probe's port ends: {said!r})"
        )

    def last_record(self) -> int:
        recs = self.named("rec")
        return int(recs[-1].words[0]) if recs else 0


def ask(live: installed.Live, name: str, kind: str = "") -> float:
    """Ask the box for something (aoelab-resilience's serve: a file `name` in the NAS share);
    returns the host time it was asked at."""
    ctl = live.box.nas / CTL
    ctl.mkdir(exist_ok=True)
    asked = time.monotonic()
    (ctl / name).write_text(kind)
    return asked


def answer(
    live: installed.Live, events: Events, name: str, kind: str, reply: str, timeout: float = 600
) -> Event:
    """Ask the box for `name` and wait for its `reply` event naming the request."""
    asked = ask(live, name, kind)
    deadline = asked + timeout
    while time.monotonic() < deadline:
        for event in events.named(reply, after=asked):
            if event.words and event.words[0] == name:
                return event
        time.sleep(0.1)
    raise AssertionError(f"no answer to {name} within {timeout:.0f} s")


@dataclass(frozen=True)
class PowerCut:
    after_record: int  # the last record the box reported synced before the power went
    back_to_record: float  # seconds from the NAS back to the box's next synced record


def power_cuts(
    live: installed.Live,
    events: Events,
    count: int,
    soak: float,
    rng: random.Random,
    dark: float = 5,
) -> tuple[list[PowerCut], Event]:
    """A soak of `soak` s under way, the NAS loses power `count` times at random moments, back
    `dark` s later each time. Returns the cuts and the soak's closing event."""
    asked = ask(live, f"soak-{soak:g}")
    events.wait("soak-start", 120, after=asked)
    cuts = []
    for _ in range(count):
        time.sleep(rng.uniform(1, soak / (count + 1)))
        before = events.last_record()
        live.power_cut()
        time.sleep(dark)  # the NAS is off, then boots: how long is not what is tested
        back = time.monotonic()
        live.start_nas()
        after = events.wait("rec", 180, after=back)[0]
        cuts.append(PowerCut(before, after.host - back))
    return cuts, events.wait("soak", soak * 10, after=asked)[0]


def wait_for_traffic(
    counters: Callable[[], tuple[int, int]], grow: int, timeout: float, alive: Callable[[], bool]
) -> float | None:
    """Seconds until the box sent `grow` bytes more on a link (its rx on the host side); None
    when it did not within `timeout`."""
    start = time.monotonic()
    base = counters()[0]
    while time.monotonic() - start < timeout and alive():
        if counters()[0] - base >= grow:
            return time.monotonic() - start
        time.sleep(0.2)
    return None


@dataclass(frozen=True)
class Records:
    numbers: list[int]  # the record numbers in the file, in order
    damaged: list[str]  # lines whose checksum does not match

    @property
    def contiguous(self) -> bool:
        return self.numbers == list(range(1, len(self.numbers) + 1))


def parse_records(text: str) -> Records:
    numbers, damaged = [], []
    for line in text.splitlines():
        fields = line.split()
        body = " ".join(fields[:2])
        if len(fields) != 3 or hashlib.sha256(body.encode()).hexdigest()[:16] != fields[2]:
            damaged.append(line)
            continue
        numbers.append(int(fields[0]))
    return Records(numbers, damaged)


def records_on_disks(box: installed.Box) -> dict[str, Records]:
    """The records as the box left them on the NAS's disks (read-only, after it powered off)."""
    found = {}
    with sysimage.mounted(box.disk, read_only=True) as target:
        found["root"] = parse_records((target / ROOT_RECORDS).read_text())
    with (
        loopdev.attached(box.data, read_only=True) as loop,
        tempfile.TemporaryDirectory(prefix="aoelab-data.") as point,
    ):
        subprocess.run(["mount", "-o", "ro,noload", f"{loop}p1", point], check=True)
        try:
            found["data"] = parse_records((Path(point) / DATA_RECORDS).read_text())
        finally:
            subprocess.run(["umount", point], check=True)
    return found


# The kernel's hung-task report: "[  T] INFO: task NAME:PID blocked for more than N seconds.",
# the task's state, its stack between <TASK> and </TASK>.
HUNG_TASK = re.compile(r"^\[\s*(\d+\.\d+)\] INFO: task (.+?) blocked for more than \d+ seconds")
CLOCK_SLACK = 5.0  # s: the console's clock (printk) against the box's monotonic clock


@dataclass
class ConsoleFindings:
    bad: list[str]  # lines that must never be there
    waited_for_the_nas: list[str]  # tasks the kernel reported blocked while the NAS was away


def console_findings(console: str, outages: Sequence[tuple[float, float]] = ()) -> ConsoleFindings:
    """What the console says went wrong. `outages` are the NAS's absences on the box's clock
    (from its last record before to its first after). A task blocked through an outage longer
    than the kernel's hung-task timeout (120 s) is what waiting for the NAS means, as on an NFS
    hard mount: a report printed inside an outage is counted, and its Call Trace is not held as
    bad. A report at any other time, or one cut off, is a task stuck for another reason."""
    findings = ConsoleFindings([], [])
    report: list[str] = []  # the hung-task report being read, header first

    def close(complete: bool) -> None:
        header = HUNG_TASK.search(report[0])
        assert header is not None
        at = float(header.group(1))
        if complete and any(start <= at <= end + CLOCK_SLACK for start, end in outages):
            findings.waited_for_the_nas.append(header.group(2))
        else:
            findings.bad.append(report[0])

    for line in console.splitlines():
        if HUNG_TASK.search(line):
            if report:
                close(complete=False)
            report = [line]
            continue
        if report:
            report.append(line)
            if "</TASK>" in line:
                close(complete=True)
                report = []
            if "Call Trace" in line:
                continue
        if any(bad in line for bad in BAD_CONSOLE):
            findings.bad.append(line)
    if report:
        close(complete=False)
    return findings
