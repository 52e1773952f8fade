"""Keep watch over the root disk while the box runs: its NICs stay up, and the user hears when
the NAS stops answering and when it answers again.

It runs resident (mlockall): once the NAS is silent, a page that had to come from the root disk
would never come, and a watcher that needs one cannot say the disk is gone. It speaks through
/dev/kmsg (the console and the kernel log, and the journal once it can write) and keeps its
state in /run/aoeboot/watch.json for `aoeboot status`. The NAS is asked with Query Config, to
each recorded server (else broadcast) on each of the disk's interfaces: an idle box sends the
NAS nothing, so only asking shows that it is gone.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import select
import socket
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aoeboot import driver, mac, netif, paths, probe, wire
from aoeboot.config import Config
from aoeboot.errors import AoebootError
from aoeboot.fsutil import atomic_write, under
from aoeboot.target import Target

KMSG = Path("/dev/kmsg")
ANSWER_WINDOW = 1.0  # seconds a probe waits for answers
MCL_CURRENT, MCL_FUTURE = 1, 2
# netlink: a link's flags changed (RTM_NEWLINK on the RTMGRP_LINK group)
RTMGRP_LINK, RTM_NEWLINK = 1, 16
_NLMSGHDR = struct.Struct("=IHHII")
_IFINFOMSG = struct.Struct("=BxHiII")
SIOCGIFFLAGS, SIOCSIFFLAGS = 0x8913, 0x8914
_IFREQ_FLAGS = struct.Struct("16sH14x")


@dataclass
class Watch:
    """What is watched (the disk, its interfaces by index, its servers) and what was seen."""

    disk: Target
    interfaces: dict[int, str]  # ifindex -> name, renames followed
    servers: tuple[str, ...]  # empty: whoever answers for the disk
    silent_after: float
    root: Path = Path("/")
    last_answer: float = field(default_factory=time.monotonic)
    answered_by: tuple[str, ...] = ()
    silent: bool = False
    links_restored: int = 0

    def state(self) -> dict[str, object]:
        quiet = time.monotonic() - self.last_answer
        return {
            "disk": self.disk.name,
            "interfaces": sorted(self.interfaces.values()),
            "servers": list(self.servers),
            "answered_by": list(self.answered_by),
            "silent": self.silent,
            "quiet_seconds": round(quiet, 1),
            "silent_after": self.silent_after,
            "links_restored": self.links_restored,
            "checked": time.time(),
            "pid": os.getpid(),
        }


def watch_of(config: Config, root: Path, silent_after: float) -> Watch:
    """What to watch on this box: its config's disk, its interfaces (the config's, by name or
    MAC; else those the driver reaches the disk on) and its recorded servers."""
    if config.boot.target is None:
        raise AoebootError(
            "nothing to watch: no [boot] target in /etc/aoeboot/aoeboot.conf",
            hint="aoeboot install-entry records it",
        )
    disk = config.boot.target.disk
    names: list[str] = []
    for wanted in config.boot.interfaces:
        if mac.is_mac(wanted):
            names += [
                n.name
                for n in sorted(netif.SYS_NET.iterdir())
                if netif.address(n.name) == mac.normal(wanted)
            ]
        else:
            names.append(wanted)
    if not names:
        names = [
            name
            for found in driver.list_targets(root)
            if found.target == disk
            for name, _ in found.paths
        ]
    interfaces = {}
    for name in dict.fromkeys(names):
        try:
            interfaces[socket.if_nametoindex(name)] = name
        except OSError:
            continue
    if not interfaces:
        raise AoebootError(
            f"nothing to watch: no interface of {disk.name} is here",
            hint="name them in [boot] interfaces (install-entry --iface)",
        )
    return Watch(disk, interfaces, config.boot.servers, silent_after, root)


def say(root: Path, level: int, text: str) -> None:
    """One line to the kernel log at syslog `level` (4 warning, 5 notice), as aoeboot."""
    try:  # one write(2) per record and no seek (/dev/kmsg refuses one); O_APPEND for a file
        fd = os.open(under(root, KMSG), os.O_WRONLY | os.O_APPEND)
    except OSError:
        return  # nowhere to say it: the state file still has it
    try:
        os.write(fd, f"<{level}>aoeboot: {text}\n".encode())
    except OSError:
        pass
    finally:
        os.close(fd)


def lock_in_memory() -> bool:
    """mlockall: every page now mapped, and every later one, stays in memory."""
    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.mlockall(MCL_CURRENT | MCL_FUTURE) == 0)


def ask(watch: Watch) -> tuple[str, ...]:
    """Query Config for the disk on every watched interface; the servers that answered."""
    sockets = []
    try:
        for name in watch.interfaces.values():
            try:
                sock, own = probe.open_socket(name)
            except Exception:  # an interface gone or down: no answer from it
                continue
            sockets.append(sock)
            targets = [mac.to_bytes(s) for s in watch.servers] or [wire.BROADCAST_MAC]
            for server in targets:
                frame = wire.query_config(
                    own, 0x5A7C0000 | watch.disk.slot, watch.disk.shelf, watch.disk.slot, dst=server
                )
                try:
                    sock.send(frame)
                except OSError:
                    pass
        return _answers(sockets, watch, time.monotonic() + ANSWER_WINDOW)
    finally:
        for sock in sockets:
            sock.close()


def _answers(sockets: list[socket.socket], watch: Watch, until: float) -> tuple[str, ...]:
    found: list[str] = []
    while sockets and (left := until - time.monotonic()) > 0:
        ready, _, _ = select.select(sockets, [], [], left)
        for sock in ready:
            while True:
                try:
                    frame = sock.recv(9000)
                except (BlockingIOError, OSError):
                    break
                server = _config_answer(frame, watch)
                if server and server not in found:
                    found.append(server)
    return tuple(found)


def _config_answer(frame: bytes, watch: Watch) -> str | None:
    """The server's MAC if `frame` answers Query Config for the disk from a watched server.
    A request never does: the watcher's own broadcast on one NIC reaches the box's others."""
    try:
        reply = wire.parse_config_reply(frame)
    except wire.WireError:
        return None
    header = reply.header
    if (header.shelf, header.slot) != (watch.disk.shelf, watch.disk.slot):
        return None
    server = mac.from_bytes(header.src)
    return server if not watch.servers or server in watch.servers else None


def keep_up(index: int, name: str) -> bool:
    """Set IFF_UP on the interface if it is down; True if it was."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = _IFREQ_FLAGS.pack(name.encode(), 0)
        flags = _IFREQ_FLAGS.unpack(fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        if flags & netif.IFF_UP:
            return False
        fcntl.ioctl(sock, SIOCSIFFLAGS, _IFREQ_FLAGS.pack(name.encode(), flags | netif.IFF_UP))
        return True


def link_events(sock: socket.socket) -> list[int]:
    """The interface indexes whose state a batch of netlink messages reports as not up."""
    down: list[int] = []
    try:
        data = sock.recv(65536)
    except OSError:
        return down
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, kind, _, _, _ = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size:
            break
        if kind == RTM_NEWLINK and length >= _NLMSGHDR.size + _IFINFOMSG.size:
            _, _, index, flags, _ = _IFINFOMSG.unpack_from(data, offset + _NLMSGHDR.size)
            if not flags & netif.IFF_UP:
                down.append(index)
        offset += (length + 3) & ~3
    return down


def restore_links(watch: Watch, indexes: Sequence[int]) -> None:
    for index in indexes:
        if index not in watch.interfaces:
            continue
        try:
            watch.interfaces[index] = socket.if_indextoname(index)  # a rename is followed
            restored = keep_up(index, watch.interfaces[index])
        except OSError:
            continue  # gone: nothing to bring up
        if restored:
            watch.links_restored += 1
            say(
                watch.root,
                4,
                f"{watch.interfaces[index]} carries the root disk "
                f"{watch.disk.name} and was taken down: brought it up again",
            )


def note(watch: Watch, answered: tuple[str, ...]) -> None:
    """Update what was seen; say it when the NAS goes silent and when it answers again."""
    now = time.monotonic()
    if answered:
        if watch.silent:
            say(
                watch.root,
                5,
                f"the NAS answers for {watch.disk.name} again "
                f"({', '.join(answered)}) after {now - watch.last_answer:.0f} s silent",
            )
        watch.silent, watch.last_answer, watch.answered_by = False, now, answered
    elif not watch.silent and now - watch.last_answer >= watch.silent_after:
        watch.silent = True
        asked = ", ".join(watch.servers) or "any server"
        say(
            watch.root,
            4,
            f"the NAS is silent: no answer for {watch.disk.name} from {asked} "
            f"on {', '.join(sorted(watch.interfaces.values()))} for "
            f"{now - watch.last_answer:.0f} s; the root disk waits for it (start its vblade)",
        )


def save(watch: Watch) -> None:
    try:
        atomic_write(under(watch.root, paths.WATCH_STATE), json.dumps(watch.state()) + "\n")
    except Exception:
        pass  # /run is tmpfs: only a missing or full one fails, and the kernel log has it


def run(watch: Watch, interval: float, rounds: int | None = None) -> None:
    """Ask every `interval` seconds (forever, or `rounds` times); bring the disk's links back up
    the moment a netlink message says one went down."""
    netlink = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    netlink.bind((0, RTMGRP_LINK))
    json.dumps(watch.state())  # everything the loop needs is loaded before the lock
    if not lock_in_memory():
        say(
            watch.root,
            4,
            "cannot lock the watcher in memory: it may not be able to say when the NAS is gone",
        )
    say(
        watch.root,
        6,
        f"watching {watch.disk.name} on {', '.join(sorted(watch.interfaces.values()))}",
    )
    done = 0
    next_ask = time.monotonic()
    while rounds is None or done < rounds:
        restore_links(watch, list(watch.interfaces))
        ready, _, _ = select.select([netlink], [], [], max(0.0, next_ask - time.monotonic()))
        if ready:
            restore_links(watch, link_events(netlink))
            continue
        note(watch, ask(watch))
        save(watch)
        done += 1
        next_ask = time.monotonic() + interval
