"""`nas-config --format vblade|vblade-unit` against the real vblade: the command line it prints,
run as printed in a namespace, answers the box's MAC and nothing else on the same link."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from aoeboot.target import Target
from aoelab.netns import Namespace, veth_pair
from aoelab.rawread import read_sector_in
from aoelab.vblade import sparse_image
from tests.helpers import REPO, aoeboot, require_programs, require_root

BOX = "52:54:00:12:34:56"
STRANGER = "52:54:00:66:66:66"
NAS = "02:aa:00:00:00:01"
SECTOR = 5
DATA = bytes(range(256)) * 2


def printed_argv(*args: str) -> list[str]:
    out = aoeboot("nas-config", "--mac", BOX, "--target", "e11.0p3", *args)
    assert out.returncode == 0, out.stderr
    commands = [line for line in out.stdout.splitlines() if not line.startswith("#")]
    assert len(commands) == 1, out.stdout
    return shlex.split(commands[0])


def client_sees(client: Namespace) -> tuple[list[dict[str, Any]], bytes | None]:
    """What the client finds by discovery, and sector SECTOR of e11.0 read straight from the
    NAS's MAC (no discovery needed for that)."""
    found = client.run(
        [
            sys.executable,
            "-m",
            "aoeboot",
            "discover",
            "--userspace",
            "--json",
            "-i",
            "eth0",
            "--timeout",
            "0.5",
        ],
        check=False,
        cwd=REPO,
    )
    assert found.returncode in (0, 1), found.stderr
    return json.loads(found.stdout), read_sector_in(client, NAS, Target(11, 0), SECTOR, 1.0)


def open_flags(pid: int, path: Path) -> int:
    """The open(2) flags with which process `pid` holds `path` (its fdinfo)."""
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        if fd.resolve() == path.resolve():
            for line in (Path(f"/proc/{pid}/fdinfo") / fd.name).read_text().splitlines():
                if line.startswith("flags:"):
                    return int(line.split()[1], 8)
    raise AssertionError(f"process {pid} does not hold {path} open")


@pytest.fixture
def image(tmp_path: Path) -> Path:
    disk = sparse_image(tmp_path / "box.img", 16 << 20)
    with open(disk, "r+b") as handle:
        handle.seek(SECTOR * 512)
        handle.write(DATA)
    return disk


def test_the_printed_vblade_answers_the_box_and_no_one_else(image):
    require_root()
    require_programs("vblade")
    argv = printed_argv("--format", "vblade", "--nas-iface", "nas0", "--export", str(image))
    assert argv == ["vblade", "-s", "-m", BOX, "11", "0", "nas0", str(image)]
    with Namespace() as nas, Namespace() as client:
        veth_pair(nas, "nas0", client, "eth0", left_mac=NAS, right_mac=STRANGER)
        # control: the same export without -m answers this client
        open_blade = nas.popen(
            argv[:2] + argv[4:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            rows, data = client_sees(client)
        finally:
            open_blade.terminate()
            open_blade.wait(timeout=5)
        assert [(r["target"], r["mac"]) for r in rows] == [("e11.0", NAS)]
        assert data == DATA
        blade = nas.popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            time.sleep(0.2)
            assert blade.poll() is None, blade.stderr.read() if blade.stderr else ""
            assert open_flags(blade.pid, image) & os.O_SYNC == os.O_SYNC  # -s: O_SYNC writes
            assert client_sees(client) == ([], None)  # another MAC: not found, not read
            client.run(["ip", "link", "set", "eth0", "address", BOX])
            rows, data = client_sees(client)  # the box's MAC: found and read
            assert [(r["target"], r["mac"]) for r in rows] == [("e11.0", NAS)]
            assert data == DATA
        finally:
            blade.terminate()
            blade.wait(timeout=5)


def test_the_unit_runs_the_same_command_and_systemd_accepts_it(tmp_path, image):
    require_programs("systemd-analyze")
    out = aoeboot(
        "nas-config",
        "--mac",
        BOX,
        "--mac",
        "52:54:00:12:34:57",
        "--target",
        "e11.0p3",
        "--format",
        "vblade-unit",
        "--nas-iface",
        "eth0",
        "--export",
        "/dev/vg/box",
    )
    assert out.returncode == 0, out.stderr
    assert "/etc/systemd/system/vblade-e11.0.service" in out.stdout
    exec_start = [line for line in out.stdout.splitlines() if line.startswith("ExecStart=")]
    assert exec_start == [
        f"ExecStart=/usr/sbin/vblade -s -m {BOX},52:54:00:12:34:57 11 0 eth0 /dev/vg/box"
    ]
    command = aoeboot(
        "nas-config",
        "--mac",
        BOX,
        "--mac",
        "52:54:00:12:34:57",
        "--target",
        "e11.0",
        "--format",
        "vblade",
        "--nas-iface",
        "eth0",
        "--export",
        "/dev/vg/box",
    )
    printed = [line for line in command.stdout.splitlines() if not line.startswith("#")]
    assert shlex.split(printed[0])[1:] == shlex.split(exec_start[0].partition("=")[2])[1:]
    unit = tmp_path / "vblade-e11.0.service"
    unit.write_text(out.stdout)
    verify = subprocess.run(
        ["systemd-analyze", "verify", str(unit)],
        capture_output=True,
        text=True,
        env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"},
    )
    assert verify.returncode == 0 and str(unit) not in verify.stderr, verify.stderr


def test_the_mtu_is_set_before_vblade_and_refused_where_the_link_cannot_carry_it(tmp_path):
    """--mtu: the interface's MTU first (vblade reads it as it starts); on the NAS, an MTU its
    interface cannot carry (a macvlan on a 1500-byte link: the kernel refuses 9000) is one
    line, and nothing is printed."""
    require_root()

    def nas_config(ns: Namespace, iface: str, fmt: str) -> subprocess.CompletedProcess[str]:
        return ns.run(
            [
                sys.executable,
                "-m",
                "aoeboot",
                "nas-config",
                "--mac",
                BOX,
                "--target",
                "e11.0",
                "--format",
                fmt,
                "--nas-iface",
                iface,
                "--export",
                str(tmp_path / "box.img"),
                "--mtu",
                "9000",
            ],
            check=False,
            cwd=REPO,
        )

    with Namespace() as nas, Namespace() as box:
        veth_pair(nas, "nas0", box, "eth0")
        nas.run(
            [
                "ip",
                "link",
                "add",
                "link",
                "nas0",
                "name",
                "mv0",
                "type",
                "macvlan",
                "mode",
                "bridge",
            ]
        )
        refused = nas_config(nas, "mv0", "vblade")
        assert refused.returncode == 2 and refused.stdout == "", refused
        assert refused.stderr.splitlines() == [
            "aoeboot: --mtu 9000: mv0 here sits on nas0, whose MTU is 1500 (raise nas0's MTU first)"
        ]
        assert nas.run(["ip", "link", "set", "mv0", "mtu", "9000"], check=False).returncode != 0
        printed = nas_config(nas, "nas0", "vblade")  # a veth carries up to 65535
        assert printed.returncode == 0, printed.stderr
        commands = [line for line in printed.stdout.splitlines() if not line.startswith("#")]
        assert commands == [
            "ip link set dev nas0 mtu 9000",
            f"vblade -s -m {BOX} 11 0 nas0 {tmp_path / 'box.img'}",
        ]
        assert "# MTU 9000 on nas0: 17 sectors (8704 bytes) per frame." in printed.stdout
        unit = nas_config(nas, "nas0", "vblade-unit").stdout
        assert "ExecStartPre=/usr/sbin/ip link set dev nas0 mtu 9000\nExecStart=" in unit
    # run where the interface is not (on the box): printed, not checked
    elsewhere = aoeboot(
        "nas-config",
        "--mac",
        BOX,
        "--target",
        "e11.0",
        "--format",
        "vblade",
        "--nas-iface",
        "nas-nowhere0",
        "--export",
        "/dev/vg/box",
        "--mtu",
        "9000",
    )
    assert elsewhere.returncode == 0 and "mtu 9000" in elsewhere.stdout, elsewhere.stderr
    for fmt, mtu in (("dnsmasq", "9000"), ("vblade", "547")):
        wrong = aoeboot(
            "nas-config",
            "--mac",
            BOX,
            "--target",
            "e11.0",
            "--format",
            fmt,
            "--nas-iface",
            "eth0",
            "--export",
            "/dev/vg/box",
            "--mtu",
            mtu,
        )
        assert wrong.returncode == 2 and wrong.stdout == "", wrong
