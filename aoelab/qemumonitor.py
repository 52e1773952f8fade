"""qemu's human monitor on a unix socket (`-monitor unix:PATH,server=on,wait=off`): one command
at a time, and the ACPI power button pressed until the guest has shut down."""

from __future__ import annotations

import contextlib
import socket
import time
from pathlib import Path

from aoelab.vm import VM


def monitor_command(path: Path, command: str) -> str:
    """One command to qemu's human monitor on its unix socket; what it printed back. Waits
    up to 10 s for the socket, which qemu makes as it starts."""
    deadline = time.monotonic() + 10
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(str(path))
        sock.sendall(command.encode() + b"\n")
        time.sleep(0.2)
        sock.setblocking(False)
        try:
            return sock.recv(65536).decode(errors="replace")
        except BlockingIOError:
            return ""


def power_off(vm: VM, monitor: Path, timeout: float = 120) -> bool:
    """Press the power button (again every 15 s: logind may not watch it yet) until qemu exits;
    True for a clean exit. A monitor that is gone means qemu is going too."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            monitor_command(monitor, "system_powerdown")
        if vm.wait_exit(15) is not None:
            return vm.proc is not None and vm.proc.returncode == 0
    return False
