"""The kernel-driver path against prepared sysfs/dev trees under a root (the live driver is
exercised in the VM tests, where the initramfs uses it)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from aoeboot import driver
from aoeboot.errors import AoebootError
from aoeboot.target import Target
from tests.helpers import REPO, require_programs, require_root


def make_disk(root: Path, name: str, state="up", sectors=131072, partitions=(1,)) -> None:
    sysdir = root / "sys/block" / f"etherd!{name}"
    sysdir.mkdir(parents=True)
    for attr, value in {
        "state": state,
        "size": str(sectors),
        "mac": "525400AABBCC",
        "netif": "eth0",
        "firmware-version": "0x4019",
        "payload": "8192",
    }.items():
        (sysdir / attr).write_text(value + "\n")
    for number in partitions:
        (sysdir / f"etherd!{name}p{number}").mkdir()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "sys/module/aoe/parameters").mkdir(parents=True)
    (tmp_path / "sys/module/aoe/parameters/aoe_iflist").write_text("\n")
    (tmp_path / "dev/etherd").mkdir(parents=True)
    (tmp_path / "dev/etherd/discover").write_text("")
    return tmp_path


def test_list_targets_reads_every_attribute(root):
    make_disk(root, "e11.1", state="down,closewait", partitions=())
    make_disk(root, "e11.0", partitions=(2, 1))
    (root / "sys/block/sda").mkdir()
    route = (driver.Route("52:54:00:aa:bb:cc", ("eth0",)),)
    assert driver.list_targets(root) == [
        driver.DriverTarget(
            Target(11, 0),
            "up",
            131072 * 512,
            "52:54:00:aa:bb:cc",
            "eth0",
            "0x4019",
            8192,
            (Target(11, 0, 1), Target(11, 0, 2)),
            route,
        ),
        driver.DriverTarget(
            Target(11, 1),
            "down,closewait",
            131072 * 512,
            "52:54:00:aa:bb:cc",
            "eth0",
            "0x4019",
            8192,
            (),
            route,
        ),
    ]
    assert [t.is_up for t in driver.list_targets(root)] == [True, False]


def test_discover_widens_iflist_triggers_and_waits_for_the_wanted_disk(root):
    (root / "sys/module/aoe/parameters/aoe_iflist").write_text("eth0\n")
    timer = threading.Timer(0.3, make_disk, (root, "e11.0"))
    timer.start()
    start = time.monotonic()
    found = driver.discover(["eth0", "eth1"], timeout=5, root=root, want=Target(11, 0, 1))
    took = time.monotonic() - start
    timer.join()
    assert [t.target for t in found] == [Target(11, 0)]
    assert 0.25 < took < 4
    assert (root / "sys/module/aoe/parameters/aoe_iflist").read_text() == "eth0 eth1\n"
    assert (root / "dev/etherd/discover").read_text() == "\n"


def test_discover_gives_up_at_the_timeout(root):
    start = time.monotonic()
    assert driver.discover([], timeout=0.4, root=root) == []
    assert time.monotonic() - start < 2


@pytest.mark.parametrize(
    "before, asked, after",
    [
        ("ens2 ens4\n", [], "ens2 ens4\n"),  # the box's root paths stay
        ("ens2\n", ["ens2"], "ens2\n"),
        ("\n", ["eth0"], "\n"),  # every interface already; no list can say so again
        ("\n", [], "\n"),
    ],
)
def test_discover_never_takes_an_interface_away_from_the_driver(root, before, asked, after):
    """The driver drops every frame from an interface not in its list: on a box whose root is
    on AoE, a list without the root's interfaces (a written "\\n" matches none) hangs the
    root disk. discover only ever adds."""
    iflist = root / "sys/module/aoe/parameters/aoe_iflist"
    iflist.write_text(before)
    driver.discover(asked, timeout=0.1, root=root)
    assert iflist.read_text() == after


def test_iflist_falls_back_to_dev_etherd_interfaces(root):
    (root / "sys/module/aoe/parameters/aoe_iflist").unlink()
    (root / "sys/module/aoe/parameters").rmdir()
    (root / "sys/module/aoe/parameters").write_text("")  # a file: the param path cannot be opened
    driver.set_interfaces(["eth0"], root)
    assert (root / "dev/etherd/interfaces").read_text() == "eth0\n"


def test_missing_discover_node_is_a_clear_error(root):
    (root / "dev/etherd/discover").unlink()
    (root / "dev/etherd").rmdir()
    with pytest.raises(AoebootError, match="cannot trigger discovery via .*/dev/etherd/discover"):
        driver.trigger(root)


def test_cli_kernel_mode_without_the_module_is_exit_2(tmp_path):
    # The running kernel (Debian's, on a Debian host) may well have aoe, loaded or not. Make it
    # one without: a modprobe that finds no aoe first on PATH, and in a mount namespace of the
    # CLI's own, a /sys/module without aoe. Nothing is loaded on this host either way.
    require_root()
    require_programs("unshare", "mount")
    release = os.uname().release
    fake = tmp_path / "bin" / "modprobe"
    fake.parent.mkdir()
    fake.write_text(
        f"#!/bin/sh\necho 'modprobe: FATAL: Module aoe not found in directory "
        f"/lib/modules/{release}' >&2\nexit 1\n"
    )
    fake.chmod(0o755)
    out = subprocess.run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            'mount -t tmpfs none /sys/module && exec "$@"',
            "sh",
            sys.executable,
            "-m",
            "aoeboot",
            "discover",
            "--kernel",
        ],
        env={**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}"},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().startswith(f"aoeboot: aoe driver not available for kernel {release}")


# What the driver's debugfs file (drivers/block/aoe/aoeblk.c, aoe_debugfs_show) says of a disk
# two servers answer for, the first through two interfaces.
DEBUGFS_TWO_SERVERS = """rttavg: 1200 rttdev: 350
nskbpool: 0
kicked: 0
maxbcnt: 8192
ref: 1
falloc: 36
ffree: 0000000000000000
525400aabbcc:0:16:16
\tssthresh:8
\ttaint:0
\tr:1402
\tw:8873
\tens3,ens4
525400ddeeff:0:1:16
\tssthresh:0
\ttaint:0
\tr:0
\tw:0
\tens3
"""


def test_every_path_to_a_disk_from_debugfs(root):
    make_disk(root, "e11.0")
    (root / "sys/kernel/debug/aoe").mkdir(parents=True)
    (root / "sys/kernel/debug/aoe/e11.0").write_text(DEBUGFS_TWO_SERVERS)
    [found] = driver.list_targets(root)
    assert found.routes == (
        driver.Route("52:54:00:aa:bb:cc", ("ens3", "ens4")),
        driver.Route("52:54:00:dd:ee:ff", ("ens3",)),
    )
    assert found.paths == [
        ("ens3", "52:54:00:aa:bb:cc"),
        ("ens4", "52:54:00:aa:bb:cc"),
        ("ens3", "52:54:00:dd:ee:ff"),
    ]


def test_paths_without_debugfs_come_from_sysfs(root):
    make_disk(root, "e11.0")
    (root / "sys/block/etherd!e11.0/netif").write_text("ens3,ens4\n")
    [found] = driver.list_targets(root)
    assert found.paths == [("ens3", "52:54:00:aa:bb:cc"), ("ens4", "52:54:00:aa:bb:cc")]
    (root / "sys/block/etherd!e11.0/netif").write_text("none\n")
    assert driver.list_targets(root)[0].paths == []
