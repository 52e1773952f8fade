"""A PXE client's DHCPDISCOVER, as firmware sends it, for testing what the NAS offers.

`discover(ns, "eth0", mac, arch=7)` runs `python -m aoelab.dhcpclient` inside the namespace: it
broadcasts one DHCPDISCOVER from `mac` with the client-architecture option (93), the PXE vendor
class, and optionally a user class ("iPXE"), and returns the first DHCPOFFER's boot file and
root-path. Only on the link the test made; the socket is bound to that interface.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import struct
import sys
import time
from dataclasses import dataclass

from aoelab.netns import Namespace

MAGIC = b"\x63\x82\x53\x63"


@dataclass(frozen=True)
class Offer:
    xid: int  # the transaction id, as the server's log names it (decimal)
    file: str
    root_path: str


def packet(mac: str, xid: int, arch: int | None, user_class: str | None) -> bytes:
    chaddr = bytes.fromhex(mac.replace(":", ""))
    # op htype hlen hops xid secs flags(broadcast) ciaddr yiaddr siaddr giaddr chaddr sname file
    head = struct.pack(
        "!BBBBIHH4s4s4s4s16s64s128s",
        1,
        1,
        6,
        0,
        xid,
        0,
        0x8000,
        bytes(4),
        bytes(4),
        bytes(4),
        bytes(4),
        chaddr,
        b"",
        b"",
    )
    options = bytearray(MAGIC + b"\x35\x01\x01")  # DHCPDISCOVER
    if arch is not None:
        options += struct.pack("!BBH", 93, 2, arch)
        vendor = f"PXEClient:Arch:{arch:05d}:UNDI:003016".encode()
        options += bytes([60, len(vendor)]) + vendor
    if user_class is not None:
        options += bytes([77, len(user_class)]) + user_class.encode()
    options += bytes([55, 3, 1, 3, 17]) + b"\xff"  # asks for mask, router, root-path
    return head + bytes(options)


def parse_offer(data: bytes, xid: int) -> Offer | None:
    if len(data) < 240 or data[0] != 2 or struct.unpack("!I", data[4:8])[0] != xid:
        return None
    options: dict[int, bytes] = {}
    at = 240 if data[236:240] == MAGIC else len(data)
    while at < len(data) and data[at] != 255:
        if data[at] == 0:
            at += 1
            continue
        code, size = data[at], data[at + 1]
        options[code] = data[at + 2 : at + 2 + size]
        at += 2 + size
    if options.get(53) != b"\x02":  # DHCPOFFER
        return None
    name = options.get(67) or data[108:236]  # option 67 or the fixed `file` field
    return Offer(xid, name.split(b"\0")[0].decode(), options.get(17, b"").split(b"\0")[0].decode())


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("iface")
    parser.add_argument("mac")
    parser.add_argument("--arch", type=int)
    parser.add_argument("--user-class")
    parser.add_argument("--timeout", type=float, default=10)
    args = parser.parse_args()
    xid = int.from_bytes(os.urandom(4), "big")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, args.iface.encode())
    sock.bind(("0.0.0.0", 68))
    request = packet(args.mac, xid, args.arch, args.user_class)
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        sock.sendto(request, ("255.255.255.255", 67))
        sock.settimeout(2)
        try:
            while True:
                offer = parse_offer(sock.recv(4096), xid)
                if offer is not None:
                    print(json.dumps(offer.__dict__))
                    return 0
        except socket.timeout:
            continue
    print(f"no DHCPOFFER on {args.iface} within {args.timeout:.0f} s", file=sys.stderr)
    return 1


def discover(
    ns: Namespace,
    iface: str,
    mac: str,
    arch: int | None = None,
    user_class: str | None = None,
    timeout: float = 10,
) -> Offer:
    argv = [sys.executable, "-m", "aoelab.dhcpclient", iface, mac, "--timeout", str(timeout)]
    if arch is not None:
        argv += ["--arch", str(arch)]
    if user_class is not None:
        argv += ["--user-class", user_class]
    out = ns.run(
        argv,
        check=False,
        timeout=timeout + 10,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip() or f"dhcpclient exited {out.returncode}")
    return Offer(**json.loads(out.stdout))


if __name__ == "__main__":
    sys.exit(main())
