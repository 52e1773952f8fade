"""The lab's rule for a box that stalled (aoelab.installed.wait_for_probe): silent on both
serial ports and taking next to nothing from the wire. Busy on the wire, or writing, it waits."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest

from aoelab import installed


class QuietVM:
    """What wait_for_probe reads of a VM: its console, its age; no qemu process."""

    proc = None

    def __init__(self, console: Path) -> None:
        self.console = console
        console.write_text("Starting initrd-switch-root.service - Switch Root...\n")

    def text(self) -> str:
        return self.console.read_text()

    def elapsed(self) -> float:
        return 19.0


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(installed, "FROZEN_AFTER", 1.5)
    monkeypatch.setattr(installed, "STALL_WINDOW", 1.0)


def test_a_box_silent_and_taking_nothing_has_stalled(tmp_path, quick):
    sent = itertools.count(0, 90)  # retransmitting, as the e1000 box in CI did
    vm = QuietVM(tmp_path / "console.log")
    with pytest.raises(installed.GuestFroze, match=r"nothing on its consoles for .* took 0 \("):
        installed.wait_for_probe(tmp_path / "probe.log", vm, 10, wire=lambda: (next(sent), 0))


def test_a_silent_box_that_reads_its_root_disk_is_waited_on(tmp_path, quick):
    taken = itertools.count(0, 256 << 10)  # a root disk at work: far more than STALLED_BYTES
    vm = QuietVM(tmp_path / "console.log")
    started = time.monotonic()
    assert not installed.wait_for_probe(
        tmp_path / "probe.log", vm, 3, wire=lambda: (0, next(taken))
    )
    assert time.monotonic() - started >= 3


def test_a_box_that_writes_on_its_console_is_waited_on(tmp_path, quick):
    vm = QuietVM(tmp_path / "console.log")

    def wire() -> tuple[int, int]:
        with open(vm.console, "a") as console:
            console.write("[  20.1] a line\n")
        return 0, 0

    assert not installed.wait_for_probe(tmp_path / "probe.log", vm, 3, wire=wire)
