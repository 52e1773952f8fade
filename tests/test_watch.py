"""`aoeboot watch` against the real vblade, in namespaces: it says when the NAS goes silent and
when it answers again, and brings the disk's NIC back up the moment it is taken down."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aoelab.netns import Namespace, veth_pair
from aoelab.vblade import Vblade, sparse_image
from tests.helpers import REPO, aoeboot, require_programs, require_root

NAS = "02:aa:00:00:00:01"
BOX = "52:54:00:12:34:56"
INTERVAL, SILENT_AFTER = 0.5, 2.0


def until(check: Callable[[], object], seconds: float) -> object:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    return check()


@pytest.fixture
def box_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "etc/aoeboot").mkdir(parents=True)
    (root / "etc/aoeboot/aoeboot.conf").write_text(
        f"[boot]\ntarget = e11.0p1\ninterfaces = {BOX}\nservers = {NAS}\n"
    )
    (root / "dev").mkdir()
    (root / "dev/kmsg").write_text("")
    return root


def test_the_watcher_tells_of_a_silent_nas_and_keeps_the_link_up(tmp_path, box_root):
    require_root()
    require_programs("vblade")
    image = sparse_image(tmp_path / "disk.img", 8 << 20)
    kmsg, state = box_root / "dev/kmsg", box_root / "run/aoeboot/watch.json"

    def said(text: str) -> bool:
        return text in kmsg.read_text()

    def seen() -> dict[str, Any]:
        return json.loads(state.read_text()) if state.exists() else {}

    with Namespace() as nas, Namespace() as client:
        veth_pair(nas, "nas0", client, "eth0", left_mac=NAS, right_mac=BOX)
        blade = Vblade(nas, 11, 0, "nas0", image)
        watcher = client.popen(
            [
                sys.executable,
                "-m",
                "aoeboot",
                "watch",
                "--root",
                str(box_root),
                "--interval",
                str(INTERVAL),
                "--silent-after",
                str(SILENT_AFTER),
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert until(lambda: seen().get("answered_by") == [NAS], 10), (seen(), kmsg.read_text())
            assert seen()["interfaces"] == ["eth0"] and seen()["silent"] is False
            assert said("<6>aoeboot: watching e11.0 on eth0")
            blade.stop()
            stopped = time.monotonic()
            assert until(lambda: said("the NAS is silent"), 10), kmsg.read_text()
            took = time.monotonic() - stopped
            assert SILENT_AFTER <= took <= SILENT_AFTER + INTERVAL + 2, took
            # said before saved: the state file follows the kernel log
            assert until(lambda: seen().get("silent") is True, 3), seen()
            line = [x for x in kmsg.read_text().splitlines() if "silent" in x][0]
            assert line.startswith(
                f"<4>aoeboot: the NAS is silent: no answer for e11.0 from {NAS} on eth0 for "
            ), line
            assert not said("again")
            blade = Vblade(nas, 11, 0, "nas0", image)
            assert until(lambda: said("answers for e11.0 again"), 10), kmsg.read_text()
            assert until(lambda: seen().get("silent") is False, 5), seen()

            client.run(["ip", "link", "set", "eth0", "down"])
            assert until(lambda: said("eth0 carries the root disk e11.0 and was taken down"), 3), (
                kmsg.read_text()
            )
            flags = client.run(["cat", "/sys/class/net/eth0/flags"]).stdout
            assert int(flags, 16) & 1, flags  # IFF_UP again
            assert until(lambda: seen().get("links_restored") == 1, 5), seen()
            assert watcher.poll() is None, watcher.communicate()
        finally:
            watcher.terminate()
            watcher.wait(timeout=10)
            blade.stop()


def test_two_nics_on_one_segment_hear_each_others_question_not_an_answer(tmp_path):
    """As in the resilience boot: both of the box's NICs on the NAS's switch, and no server
    recorded (install-entry ran offline). The question broadcast on one NIC reaches the other;
    it is a request, and the NAS still goes silent."""
    require_root()
    require_programs("vblade")
    image = sparse_image(tmp_path / "disk.img", 8 << 20)
    root = tmp_path / "root"
    (root / "etc/aoeboot").mkdir(parents=True)
    second = "52:54:00:12:34:57"
    (root / "etc/aoeboot/aoeboot.conf").write_text(
        f"[boot]\ntarget = e11.0p1\ninterfaces = {BOX}, {second}\n"
    )
    (root / "dev").mkdir()
    kmsg = root / "dev/kmsg"
    kmsg.write_text("")
    with Namespace() as nas, Namespace() as client:
        veth_pair(nas, "port0", client, "eth0", right_mac=BOX)
        veth_pair(nas, "port1", client, "eth1", right_mac=second)
        veth_pair(nas, "port2", nas, "nas0", right_mac=NAS)
        nas.add_bridge("sw0", "02:aa:00:00:00:fe", ports=["port0", "port1", "port2"])
        blade = Vblade(nas, 11, 0, "nas0", image)
        watcher = client.popen(
            [
                sys.executable,
                "-m",
                "aoeboot",
                "watch",
                "--root",
                str(root),
                "--interval",
                str(INTERVAL),
                "--silent-after",
                str(SILENT_AFTER),
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            state = root / "run/aoeboot/watch.json"
            assert until(
                lambda: state.exists() and json.loads(state.read_text())["answered_by"] == [NAS], 10
            ), kmsg.read_text()
            blade.stop()
            assert until(lambda: "the NAS is silent" in kmsg.read_text(), 10), kmsg.read_text()
            assert "from any server on eth0, eth1" in kmsg.read_text()
        finally:
            watcher.terminate()
            watcher.wait(timeout=10)
            blade.stop()


def test_nothing_to_watch_is_one_line_and_exit_2(tmp_path):
    root = tmp_path / "root"
    (root / "etc/aoeboot").mkdir(parents=True)
    (root / "etc/aoeboot/aoeboot.conf").write_text("[boot]\n")
    out = aoeboot("watch", "--root", str(root))
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.splitlines() == [
        "aoeboot: nothing to watch: no [boot] target in /etc/aoeboot/aoeboot.conf "
        "(aoeboot install-entry records it)"
    ]
    nan = aoeboot("watch", "--root", str(root), "--interval", "nan")
    assert nan.returncode == 2 and len(nan.stderr.splitlines()) == 1, nan.stderr


def test_a_line_reaches_the_kernel_log(tmp_path):
    """The real /dev/kmsg (it refuses the seek an append-mode open makes), at debug level."""
    require_root()
    from aoeboot import watch

    token = f"test-{time.monotonic_ns()}"
    watch.say(Path("/"), 7, token)
    fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    found = False
    try:
        while not found:
            try:
                found = token in os.read(fd, 8192).decode(errors="replace")
            except BlockingIOError:
                break
            except OSError:  # a record overwritten while reading: go on
                continue
    finally:
        os.close(fd)
    assert found
