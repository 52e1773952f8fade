"""Discovery without the kernel driver: Query Config and ATA IDENTIFY over an AF_PACKET socket.

Works in a container, on the NAS itself, or before `aoe` is loaded, and cross-checks the driver.
One socket per interface; IDENTIFY goes out as soon as a target answers, so the whole probe
costs the answer window plus one round trip.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from aoeboot import mac as macs
from aoeboot import netif, wire
from aoeboot.errors import AoebootError
from aoeboot.target import MAX_SHELF, MAX_SLOT, Target

log = logging.getLogger(__name__)

IDENTIFY_GRACE = 0.2  # seconds an IDENTIFY may take after the answer window closes
IDENTIFY_TAGS = 0x7FFF  # IDENTIFY tags are tag_base | 0x8000 | n; Query Config ones lack 0x8000


@dataclass(frozen=True)
class ProbedTarget:
    target: Target
    interface: str
    mac: str  # the server's MAC
    buffer_count: int
    firmware_version: int
    config_string: str
    size_bytes: int | None = None  # None: the target answered Query Config but not IDENTIFY
    model: str | None = None


def open_socket(interface: str) -> tuple[socket.socket, bytes]:
    """A raw AoE socket on `interface`, and the interface's own MAC."""
    address = netif.address(interface)
    if address is None:
        raise AoebootError(f"no such Ethernet interface: {interface}")
    try:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(wire.ETH_P_AOE))
    except PermissionError:
        raise AoebootError("raw AoE sockets need root (CAP_NET_RAW)") from None
    try:
        sock.bind((interface, wire.ETH_P_AOE))
    except OSError as err:
        sock.close()
        raise AoebootError(f"cannot listen on {interface}: {err.strerror}") from None
    sock.setblocking(False)
    return sock, macs.to_bytes(address)


def probe(interfaces: Sequence[str] = (), timeout: float = 0.3) -> list[ProbedTarget]:
    """Broadcast Query Config on `interfaces` (default: every Ethernet interface that is up),
    collect answers for `timeout` seconds, IDENTIFY each target; one per target, interface and
    server (every path), sorted by target."""
    names = list(interfaces) or netif.ethernet_up()
    if not names:
        raise AoebootError("no Ethernet interface is up", hint="name one with --iface")
    sockets: dict[int, tuple[str, socket.socket, bytes]] = {}
    try:
        for name in names:
            sock, mac = open_socket(name)
            sockets[sock.fileno()] = (name, sock, mac)
        return _exchange(list(sockets.values()), timeout)
    finally:
        for _, sock, _ in sockets.values():
            sock.close()


def _exchange(
    sockets: list[tuple[str, socket.socket, bytes]], timeout: float
) -> list[ProbedTarget]:
    tag_base = (os.getpid() & 0xFFFF) << 16
    for index, (name, sock, mac) in enumerate(sockets):
        send(sock, name, wire.query_config(mac, tag_base | index))
    # one answer per path: target, interface and server (two NASes may export one target)
    answers: dict[tuple[Target, str, str], ProbedTarget] = {}
    identified: dict[tuple[Target, str, str], wire.Identity] = {}
    pending: dict[int, tuple[Target, str, str]] = {}  # IDENTIFY tag -> key
    by_fd = {sock.fileno(): (name, sock, mac) for name, sock, mac in sockets}
    window_end = time.monotonic() + timeout
    while True:
        now = time.monotonic()
        end = window_end + (IDENTIFY_GRACE if pending else 0)
        if now >= end:
            break
        ready, _, _ = select.select(list(by_fd), [], [], end - now)
        for fd in ready:
            name, sock, mac = by_fd[fd]
            while True:
                try:
                    frame = sock.recv(9000)
                except BlockingIOError:
                    break
                _handle(frame, name, sock, mac, tag_base, answers, identified, pending)
    return [_with_identity(answers[key], identified.get(key)) for key in sorted(answers)]


class Sender(Protocol):
    """What _handle and send need of the socket: send(frame). The tests pass one that keeps
    the frames."""

    def send(self, frame: bytes, /) -> object: ...


def _handle(
    frame: bytes,
    name: str,
    sock: Sender,
    mac: bytes,
    tag_base: int,
    answers: dict[tuple[Target, str, str], ProbedTarget],
    identified: dict[tuple[Target, str, str], wire.Identity],
    pending: dict[int, tuple[Target, str, str]],
) -> None:
    try:
        header = wire.parse_header(frame)
    except wire.WireError:
        return
    if not header.is_response or header.tag & 0xFFFF0000 != tag_base:
        return  # someone else's request or reply
    if header.shelf > MAX_SHELF or header.slot > MAX_SLOT:
        return
    target = Target(header.shelf, header.slot)
    key = (target, name, macs.from_bytes(header.src))
    if header.command == wire.CMD_QUERY_CONFIG and key not in answers:
        if header.flags & wire.FLAG_ERROR:
            log.info("%s on %s: %s", target, name, wire.error_text(header.error))
            return
        try:
            reply = wire.parse_config_reply(frame)
        except wire.WireError as err:
            log.info("bad Query Config reply from %s: %s", macs.from_bytes(header.src), err)
            return
        # One IDENTIFY per answer, numbered by answer: no two ever share a tag (a count of the
        # ones still pending would hand out a tag that is still waiting).
        number = len(answers)
        answers[key] = ProbedTarget(
            target,
            name,
            key[2],
            reply.buffer_count,
            reply.firmware_version,
            reply.config_string.decode("utf-8", "replace"),
        )
        if number > IDENTIFY_TAGS:
            return  # more targets than tags: this one's size stays unknown
        tag = tag_base | 0x8000 | number
        pending[tag] = key
        send(sock, name, wire.ata_identify(mac, header.src, header.shelf, header.slot, tag))
    elif header.command == wire.CMD_ATA and header.tag in pending:
        key = pending.pop(header.tag)
        try:
            ata = wire.parse_ata_reply(frame)
            if not header.flags & wire.FLAG_ERROR and not ata.failed:
                identified[key] = wire.parse_identify(ata.data)
        except wire.WireError as err:
            log.info("bad IDENTIFY reply for %s: %s", key[0], err)


def send(sock: Sender, name: str, frame: bytes) -> None:
    try:
        sock.send(frame)
    except OSError as err:
        if err.errno == errno.ENETDOWN:
            raise AoebootError(f"interface {name} is down") from None
        raise AoebootError(f"cannot send on {name}: {err.strerror}") from None


def _with_identity(answer: ProbedTarget, identity: wire.Identity | None) -> ProbedTarget:
    if identity is None:
        return answer
    return ProbedTarget(
        **{**answer.__dict__, "size_bytes": identity.size_bytes, "model": identity.model}
    )
