"""Network namespaces with veth pairs and tap devices, made and torn down by the caller.

Traffic only ever flows on links made here, inside namespaces made here.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from typing import Any

_counter = itertools.count()


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


class Namespace:
    """One network namespace. Use as a context manager; leaving it kills what runs inside."""

    def __init__(self, prefix: str = "aoeb") -> None:
        self.name = f"{prefix}-{os.getpid()}-{next(_counter)}"
        _ip("netns", "add", self.name)
        self.run(["ip", "link", "set", "lo", "up"])

    def argv(self, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *map(str, argv)]

    def run(
        self, argv: Sequence[str], check: bool = True, **kwargs: Any
    ) -> subprocess.CompletedProcess[Any]:
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        return subprocess.run(self.argv(argv), check=check, **kwargs)

    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        return subprocess.Popen(self.argv(argv), **kwargs)

    def link_up(self, ifname: str) -> None:
        self.run(["ip", "link", "set", ifname, "up"])

    def add_tap(self, ifname: str) -> None:
        """A tap device (for qemu's `-netdev tap,ifname=...`), up, with no address."""
        self.run(["ip", "tuntap", "add", "dev", ifname, "mode", "tap"])
        self.link_up(ifname)

    def add_bridge(self, ifname: str, mac: str, ports: Sequence[str] = ()) -> None:
        """A bridge (no STP: ports forward at once) with address `mac`, up, with `ports` in it:
        one Ethernet segment that more namespaces can join through veth pairs."""
        self.run(["ip", "link", "add", ifname, "address", mac, "type", "bridge"])
        for port in ports:
            self.run(["ip", "link", "set", port, "master", ifname])
        self.link_up(ifname)

    def mac(self, ifname: str) -> str:
        address: str = self.run(["cat", f"/sys/class/net/{ifname}/address"]).stdout
        return address.strip()

    def pids(self) -> list[int]:
        out = subprocess.run(["ip", "netns", "pids", self.name], capture_output=True, text=True)
        return [int(p) for p in out.stdout.split()]

    def delete(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = self.pids()
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 3
            while self.pids() and time.monotonic() < deadline:
                time.sleep(0.05)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)

    def __enter__(self) -> Namespace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.delete()


def veth_pair(
    left: Namespace,
    left_name: str,
    right: Namespace,
    right_name: str,
    left_mac: str | None = None,
    right_mac: str | None = None,
) -> None:
    """A veth pair with one end in each namespace, both up, no addresses."""
    tmp = f"vt{os.getpid() % 100000}{next(_counter)}"
    _ip("link", "add", tmp, "type", "veth", "peer", "name", tmp + "p")
    _ip("link", "set", tmp, "netns", left.name)
    _ip("link", "set", tmp + "p", "netns", right.name)
    for ns, old, new, mac in (
        (left, tmp, left_name, left_mac),
        (right, tmp + "p", right_name, right_mac),
    ):
        ns.run(["ip", "link", "set", old, "name", new])
        if mac:
            ns.run(["ip", "link", "set", new, "address", mac])
        ns.link_up(new)
