"""A two-port Ethernet relay that lets chosen AoE replies through only in a given order.

It stands between the box and the NAS (both ends in namespaces the caller made) and forwards
every frame, except that the replies named in `order` pass strictly one after the other: each
is held until all named before it have passed. That is what a slow NAS or a busy switch does
now and then; here it happens every time, so a test can rely on it.

Run inside a namespace: `python -m aoelab.relay LEFT RIGHT e12.0:config,e12.1:config,e12.0:ata`
(prints "ready" once both ports listen).
"""

from __future__ import annotations

import select
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from aoeboot import wire
from aoelab.netns import Namespace

COMMANDS = {"ata": wire.CMD_ATA, "config": wire.CMD_QUERY_CONFIG}
PACKET_OUTGOING = 4

Reply = tuple[int, int, int]  # shelf, slot, command


def parse_order(text: str) -> list[Reply]:
    """`eS.T:config,eS.T:ata,...` as (shelf, slot, command) triples."""
    order = []
    for item in text.split(","):
        name, _, command = item.partition(":")
        shelf, _, slot = name.lstrip("e").partition(".")
        order.append((int(shelf), int(slot), COMMANDS[command]))
    return order


def _reply_of(frame: bytes) -> Reply | None:
    try:
        header = wire.parse_header(frame)
    except wire.WireError:
        return None
    if not header.is_response:
        return None
    return header.shelf, header.slot, header.command


def relay(left: str, right: str, order: Sequence[Reply]) -> None:
    """Forward AoE frames between `left` and `right` until killed."""
    ports: dict[int, tuple[socket.socket, socket.socket]] = {}
    sockets = {}
    for name in (left, right):
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(wire.ETH_P_AOE))
        sock.bind((name, wire.ETH_P_AOE))
        sockets[name] = sock
    ports[sockets[left].fileno()] = (sockets[left], sockets[right])
    ports[sockets[right].fileno()] = (sockets[right], sockets[left])
    passed = 0  # how many of `order` have gone through
    held: dict[Reply, tuple[socket.socket, bytes]] = {}
    print("ready", flush=True)
    while True:
        ready, _, _ = select.select(list(ports), [], [])
        for fd in ready:
            inbound, outbound = ports[fd]
            frame, address = inbound.recvfrom(9000)
            if address[2] == PACKET_OUTGOING:
                continue
            reply = _reply_of(frame)
            if reply in order[passed:]:
                held[reply] = (outbound, frame)  # type: ignore[index]
            else:
                outbound.send(frame)
            while passed < len(order) and order[passed] in held:
                port, frame = held.pop(order[passed])
                port.send(frame)
                passed += 1


class Relay:
    """`python -m aoelab.relay` running in `ns` until stopped (or the namespace dies)."""

    def __init__(self, ns: Namespace, left: str, right: str, order: str) -> None:
        for name in (left, right):
            ns.run(["ip", "link", "set", name, "promisc", "on"])
        self.proc = ns.popen(
            [sys.executable, "-m", "aoelab.relay", left, right, order],
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).parents[1],
        )
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            self.stop()
            raise RuntimeError(f"relay between {left} and {right} did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def __enter__(self) -> Relay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    relay(sys.argv[1], sys.argv[2], parse_order(sys.argv[3]))
