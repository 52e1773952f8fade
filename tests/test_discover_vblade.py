"""`aoeboot discover --userspace` against real vblade targets in namespaces the test made."""

from __future__ import annotations

import json
import signal
import sys
import time

from aoelab.netns import Namespace, veth_pair
from aoelab.vblade import Vblade, sparse_image
from tests.helpers import REPO
from tests.lab import SIZES, serve


def discover(ns, *args, timeout=30):
    start = time.monotonic()
    out = ns.run(
        [sys.executable, "-m", "aoeboot", "discover", *args], check=False, cwd=REPO, timeout=timeout
    )
    return out, time.monotonic() - start


def test_finds_both_targets_with_their_sizes(lab):
    out, _ = discover(lab.client, "--userspace", "--json", "-i", "eth0")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    nas_mac = lab.nas.mac("nas0")
    assert [(r["target"], r["size_bytes"], r["interface"], r["mac"]) for r in rows] == [
        (f"e{s}.{t}", size, "eth0", nas_mac) for (s, t), size in SIZES.items()
    ]
    assert all(r["model"] == "Coraid EtherDrive vblade" for r in rows)


def test_table_by_default(lab):
    out, _ = discover(lab.client, "--userspace")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:3] == ["TARGET", "SIZE", "INTERFACE"]
    assert lines[1].split()[:4] == ["e11.0", "64.0", "MiB", "eth0"]
    assert lines[2].split()[:4] == ["e11.1", "3.0", "GiB", "eth0"]


def test_target_that_vanishes_is_dropped_within_the_timeout(lab):
    out, _ = discover(lab.client, "--userspace", "--json", "-i", "eth0")
    assert [r["target"] for r in json.loads(out.stdout)] == ["e11.0", "e11.1"]
    lab.stop("e11.1", signal.SIGSTOP)  # a NAS process that hangs: no answer at all
    out, took = discover(lab.client, "--userspace", "--json", "-i", "eth0", "--timeout", "0.5")
    assert out.returncode == 0
    assert [r["target"] for r in json.loads(out.stdout)] == ["e11.0"]
    assert took < 0.5 + 2.0  # the window plus interpreter start, never a hang
    lab.stop("e11.0")  # gone for good: nothing left to find
    lab.stop("e11.1")
    out, _ = discover(lab.client, "--userspace", "--json", "-i", "eth0", "--timeout", "0.3")
    assert (out.returncode, json.loads(out.stdout)) == (1, [])


def test_interface_without_a_nas_finds_nothing(lab):
    with Namespace() as empty:
        veth_pair(empty, "void0", lab.client, "eth1")
        out, took = discover(lab.client, "--userspace", "--json", "-i", "eth1", "--timeout", "0.4")
    assert (out.returncode, json.loads(out.stdout)) == (1, [])
    assert took < 0.4 + 2.0
    out, _ = discover(lab.client, "--userspace", "-i", "eth0", "-i", "lo", "--json")
    assert [r["target"] for r in json.loads(out.stdout)] == ["e11.0", "e11.1"]


def test_no_such_interface_is_one_line_exit_2(lab):
    out, _ = discover(lab.client, "--userspace", "-i", "nope0")
    assert out.returncode == 2
    assert out.stderr.strip() == "aoeboot: no such interface: nope0"


def test_bad_interface_name_is_rejected_before_anything_runs(lab):
    out, _ = discover(lab.client, "--userspace", "-i", "../etc")
    assert out.returncode == 2 and "invalid interface '../etc'" in out.stderr


def test_not_root_is_exit_2_with_reason(lab):
    out = lab.client.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            sys.executable,
            "-m",
            "aoeboot",
            "discover",
            "--userspace",
        ],
        check=False,
        cwd=REPO,
    )
    assert out.returncode == 2
    assert out.stderr.strip() == "aoeboot: discover needs root (raw sockets or the aoe driver)"


def test_interface_by_mac(lab):
    mac = lab.client.mac("eth0")
    out, _ = discover(lab.client, "--userspace", "--json", "-i", mac.upper())
    assert out.returncode == 0, out.stderr
    assert {r["interface"] for r in json.loads(out.stdout)} == {"eth0"}
    out, _ = discover(lab.client, "--userspace", "-i", "02:00:00:00:00:99")
    assert out.returncode == 2
    assert out.stderr.strip() == "aoeboot: no interface has the MAC address 02:00:00:00:00:99"


def test_interface_that_is_down_says_so(lab):
    lab.client.run(["ip", "link", "add", "down0", "type", "veth", "peer", "name", "down1"])
    out, _ = discover(lab.client, "--userspace", "-i", "down0")
    assert out.returncode == 2
    assert out.stderr.strip() == "aoeboot: interface down0 is down (ip link set down0 up)"


def test_three_targets_whose_answers_interleave_each_get_their_own_size(tmp_path):
    # The probe sends each IDENTIFY when the target's Query Config answer comes in. Here e12.0's
    # IDENTIFY reply comes back while e12.1's is still out, and only then does e12.2 answer
    # Query Config: its IDENTIFY must not reuse the tag e12.1's is waiting under.
    sizes = {(12, 0): 16 << 20, (12, 1): 32 << 20, (12, 2): 48 << 20}
    order = "e12.0:config,e12.1:config,e12.0:ata,e12.2:config,e12.1:ata"
    with serve(tmp_path, sizes, order) as lab:
        out, _ = discover(lab.client, "--userspace", "--json", "-i", "eth0", "--timeout", "1")
    assert out.returncode == 0, out.stderr
    assert {r["target"]: r["size_bytes"] for r in json.loads(out.stdout)} == {
        "e12.0": 16 << 20,
        "e12.1": 32 << 20,
        "e12.2": 48 << 20,
    }


def test_a_target_served_by_two_servers_is_listed_once_per_server(tmp_path):
    # Two NASes (or a NAS and a spoofer) exporting e13.0 on one segment: both are paths to it,
    # and the user must see both, not whichever answered first.
    image = sparse_image(tmp_path / "disk.img", 8 << 20)
    servers = {"02:5a:00:00:00:01", "02:5a:00:00:00:02"}
    with Namespace("aoecl") as client, Namespace("aoesa") as one, Namespace("aoesb") as two:
        client.run(["ip", "link", "add", "br0", "address", "02:c1:00:00:00:01", "type", "bridge"])
        for i, (server, mac) in enumerate(zip((one, two), sorted(servers))):
            veth_pair(client, f"p{i}", server, "eth0", right_mac=mac)
            client.run(["ip", "link", "set", f"p{i}", "master", "br0"])
        client.link_up("br0")
        with Vblade(one, 13, 0, "eth0", image), Vblade(two, 13, 0, "eth0", image):
            out, _ = discover(client, "--userspace", "--json", "-i", "br0", "--timeout", "1")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert sorted((r["target"], r["interface"], r["mac"]) for r in rows) == [
        ("e13.0", "br0", mac) for mac in sorted(servers)
    ]
    assert {r["size_bytes"] for r in rows} == {8 << 20}  # each one IDENTIFYed
