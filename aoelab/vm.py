"""qemu-system-x86_64 VMs for boot tests: kernel+initramfs or iPXE network boot, serial console
captured to a file, run inside a namespace so its tap device only ever talks to the test's NAS.

    vm = VM(ns, console=tmp/"console.log", kernel=..., initrd=..., append="root=aoe:e11.0p1 ...")
    vm.start(); vm.wait_for(MARKER, timeout=120); vm.wait_exit(30)
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from aoelab.netns import Namespace

QEMU = "qemu-system-x86_64"
# Two vCPUs, as a real box has more than one: multi-threaded TCG runs one per host core, and the
# installed system booted from a local disk in 58 s against 96 s with one. AOELAB_CPUS=N to try
# another count.
CPUS = int(os.environ.get("AOELAB_CPUS", "2"))
# Debian's ovmf: the x86-64 UEFI firmware, code read-only, variables a copy per VM
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
# Under TCG a vCPU thread the host leaves unscheduled for 20 s reads to the guest as a soft
# lockup (seen in CI: "stuck for 22s" in modprobe at boot, a 2-core host). 60 s, the most,
# puts the report at 120 s: a CPU really stuck still gets one.
WATCHDOG = "watchdog_thresh=60"
CONSOLE_ARGS = f"console=ttyS0,115200 panic=-1 rd.shell=0 rd.emergency=poweroff {WATCHDOG}"
PRINTK_TIME = re.compile(r"^\[\s*(\d+\.\d+)\]", re.M)


@functools.cache
def accel() -> str:
    """'kvm' if a kernel really starts under KVM here, else 'tcg'. On these machines KVM either
    aborts (MSR 0x10a) or hangs silently, so probe with the real kernel for a few seconds."""
    forced = os.environ.get("AOELAB_ACCEL")
    if forced:
        return forced
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "tcg"
    from aoelab.kernel import installed_kernel

    kernel = installed_kernel()
    if kernel is None:
        return "tcg"
    try:
        out = subprocess.run(
            [
                QEMU,
                "-accel",
                "kvm",
                "-m",
                "128",
                "-display",
                "none",
                "-nodefaults",
                "-no-reboot",
                "-serial",
                "stdio",
                "-kernel",
                str(kernel.image),
                "-append",
                "console=ttyS0 panic=-1",
            ],
            capture_output=True,
            text=True,
            timeout=6,
        )
        return "kvm" if "Linux version" in out.stdout else "tcg"
    except subprocess.TimeoutExpired as expired:
        seen = (
            expired.stdout.decode(errors="replace")
            if isinstance(expired.stdout, bytes)
            else (expired.stdout or "")
        )
        return "kvm" if "Linux version" in seen else "tcg"


class VM:
    def __init__(
        self,
        ns: Namespace,
        console: Path,
        *,
        kernel: Path | None = None,
        initrd: Path | None = None,
        append: str = "",
        tap: str | None = "tap0",
        nic: str = "virtio-net-pci",
        mac: str = "52:54:00:12:34:56",
        disk: Path | None = None,
        netboot: bool = False,
        memory: int = 512,
        firmware: str = "bios",
        option_rom: bool = True,
        extra: Sequence[str] = (),
    ) -> None:
        """`firmware` "bios" (SeaBIOS) or "uefi" (OVMF, variables kept beside `console`).
        Without `option_rom` the NIC has no iPXE ROM: UEFI's own PXE must fetch iPXE."""
        self.ns = ns
        self.console = console
        argv: list[str] = [
            QEMU,
            "-accel",
            accel(),
            "-m",
            str(memory),
            "-smp",
            str(CPUS),
            "-display",
            "none",
            "-nodefaults",
            "-no-reboot",
            "-serial",
            f"file:{console}",
        ]
        if accel() == "tcg":
            argv += ["-cpu", "max"]
        if kernel is not None:
            argv += ["-kernel", str(kernel), "-append", f"{CONSOLE_ARGS} {append}".strip()]
            if initrd is not None:
                argv += ["-initrd", str(initrd)]
        if tap is not None:
            argv += [
                "-netdev",
                f"tap,id=n0,ifname={tap},script=no,downscript=no",
                "-device",
                f"{nic},netdev=n0,mac={mac}" + ("" if option_rom else ",romfile="),
            ]
        if disk is not None:
            argv += ["-drive", f"file={disk},format=raw,if=virtio"]
        if firmware == "uefi":
            variables = console.with_name(console.stem + "-ovmf-vars.fd")
            variables.write_bytes(OVMF_VARS.read_bytes())
            argv += [
                "-drive",
                f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}",
                "-drive",
                f"if=pflash,format=raw,unit=1,file={variables}",
            ]
            if netboot:  # OVMF writes its console (and iPXE's) to the serial port itself
                argv += ["-boot", "n"]
        elif netboot:
            # sgabios copies the BIOS text console (where iPXE writes) to the serial port
            argv += ["-boot", "n", "-device", "sga"]
        self.argv = argv + list(extra)
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0

    def start(self) -> VM:
        self.console.write_text("")
        self.started = time.monotonic()
        self.proc = self.ns.popen(
            self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        return self

    def text(self) -> str:
        try:
            return self.console.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for(
        self, pattern: str, timeout: float, watch: Callable[[], None] | None = None
    ) -> re.Match[str] | None:
        """Wait for `pattern` (a regex) on the console; None if qemu exits or time runs out.
        `watch` is called on every look (a StallWatch's check, which raises GuestFroze)."""
        regex = re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = regex.search(self.text())
            if match:
                return match
            if self.proc is not None and self.proc.poll() is not None:
                return regex.search(self.text())
            if watch is not None:
                watch()
            time.sleep(0.2 if watch is None else 0.5)
        return None

    def wait_exit(self, timeout: float) -> int | None:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def elapsed(self) -> float:
        """Wall seconds since start() (the boot benchmarks' clock)."""
        return time.monotonic() - self.started

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> VM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def printk_time(line_pattern: str, text: str) -> float | None:
    """The kernel timestamp ([   12.345678]) of the first console line matching `line_pattern`."""
    for line in text.splitlines():
        if re.search(line_pattern, line):
            match = PRINTK_TIME.search(line)
            if match:
                return float(match.group(1))
    return None
