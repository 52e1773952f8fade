"""One raw ATA READ straight to a server MAC, no discovery: what the tests use to see what a
vblade answers, and to whom. Run in a namespace with `read_sector_in`."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path

from aoeboot import mac as macs
from aoeboot import probe, wire
from aoeboot.errors import AoebootError
from aoeboot.target import Target
from aoelab.netns import Namespace

REPO = Path(__file__).resolve().parents[1]


def read_sector(
    interface: str, server: str, target: Target, lba: int = 0, timeout: float = 1.0
) -> bytes | None:
    """One ATA READ of sector `lba` of `target`, sent from `interface` to the server MAC
    `server`: its 512 bytes, or None when nothing answered within `timeout` (a vblade whose
    -m list leaves this interface's MAC out answers nothing at all). An error answer raises."""
    sock, own = probe.open_socket(interface)
    tag = ((os.getpid() & 0xFFFF) << 16) | 0x4000 | (lba & 0x3FFF)
    try:
        probe.send(
            sock,
            interface,
            wire.ata_read(own, macs.to_bytes(server), target.shelf, target.slot, tag, lba),
        )
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([sock], [], [], left)[0]:
                return None
            try:
                frame = sock.recv(9000)
                header = wire.parse_header(frame)
            except BlockingIOError:
                continue
            except wire.WireError:
                continue
            if not header.is_response or header.tag != tag or header.command != wire.CMD_ATA:
                continue
            if header.flags & wire.FLAG_ERROR:
                raise AoebootError(
                    f"{target.disk.name} from {server}: {wire.error_text(header.error)}"
                )
            reply = wire.parse_ata_reply(frame)
            if reply.failed or len(reply.data) < wire.SECTOR:
                raise AoebootError(
                    f"{target.disk.name} from {server}: ATA read of sector {lba} "
                    f"failed (status {reply.status:#04x}, error {reply.error:#04x})"
                )
            return reply.data[: wire.SECTOR]
    finally:
        sock.close()


def read_sector_in(
    namespace: Namespace, server: str, target: Target, lba: int, timeout: float
) -> bytes | None:
    """read_sector from the namespace's eth0."""
    argv = [sys.executable, "-m", "aoelab.rawread", "eth0", server, str(target), str(lba)]
    out: subprocess.CompletedProcess[str] = namespace.run(
        [*argv, str(timeout)], check=False, cwd=REPO
    )
    assert out.returncode == 0, out.stderr
    return None if out.stdout == "none" else bytes.fromhex(out.stdout)


if __name__ == "__main__":
    interface, server, target, lba, timeout = sys.argv[1:]
    data = read_sector(interface, server, Target.parse(target), int(lba), float(timeout))
    sys.stdout.write("none" if data is None else data.hex())
