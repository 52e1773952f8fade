"""Benchmark netboot: the same published kernel and initramfs fetched by iPXE over TFTP and over
HTTP, under BIOS (SeaBIOS, the NIC's iPXE ROM) and under UEFI (OVMF, whose PXE fetches
snponly.efi), one boot each, side by side. Run as root: python -m bench.netboot

The NAS is dnsmasq (DHCP and TFTP, configured with what `aoeboot nas-config` prints, with
`--script http://...` for HTTP) and, for HTTP, Python's http.server, both on the tap in the
test's namespace, serving the directory `aoeboot.publish` wrote. Each boot's console is watched
from the host and the wall time of the first sight of each milestone is taken:

  prompt   iPXE's "Press Ctrl-B" banner (the start of the figure: firmware time is left out)
  script   the box's script fetched (DHCP done; "boot.ipxe... ok")
  booting  the menu's default chosen ("aoeboot: booting"): the menu's timeout and little else
  kernel   the kernel's first console line (kernel and initramfs fetched and started)
  root     root mounted over AoE (the initramfs's marker)

Printed: prompt -> root, and the parts; the menu's timeout is the script -> booting part (the
menu itself is not on the serial console under BIOS: sgabios does not copy iPXE's screen UI).
TCG on a shared machine: absolute figures are slow and noisy; compare within the run.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aoeboot import publish
from aoeboot.config import BootConfig, Config, PublishConfig
from aoeboot.target import Target
from aoelab import dracutdir
from aoelab.disk import MARKER, make_disk
from aoelab.dnsmasq import NAS_IP, Dnsmasq
from aoelab.netns import Namespace
from aoelab.vblade import Vblade
from aoelab.vm import CONSOLE_ARGS, VM, accel
from bench import REPO, kernel_with_aoe

MAC = "52:54:00:12:34:56"
HOST = MAC.replace(":", "-")
HTTP_PORT = 8080
SNPONLY = Path("/usr/lib/ipxe/snponly.efi")
MILESTONES: list[tuple[str, str]] = [
    ("prompt", r"Press Ctrl-B"),
    ("script", r"boot\.ipxe\.\.\. ok"),
    ("booting", r"aoeboot: booting"),
    ("kernel", r"Linux version"),
    ("root", MARKER),
]


def watch(vm: VM, timeout: float) -> dict[str, float]:
    """Wall seconds since qemu start at which each milestone was first seen."""
    seen: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while len(seen) < len(MILESTONES) and time.monotonic() < deadline:
        text = vm.text()
        for name, pattern in MILESTONES:
            if name not in seen and re.search(pattern, text):
                seen[name] = vm.elapsed()
        if vm.proc is not None and vm.proc.poll() is not None:
            break
        time.sleep(0.1)
    missing = [name for name, _ in MILESTONES if name not in seen]
    if missing:
        raise SystemExit(f"boot did not reach {', '.join(missing)}:\n{vm.text()[-3000:]}")
    return seen


def boot(work: Path, tftp: Path, firmware: str, transport: str) -> dict[str, float]:
    name = f"{firmware}-{transport}"
    script = (
        ["--script", f"http://{NAS_IP}:{HTTP_PORT}/{HOST}/boot.ipxe"] if transport == "http" else []
    )
    fragment = subprocess.run(
        [
            sys.executable,
            "-m",
            "aoeboot",
            "nas-config",
            "--mac",
            MAC,
            "--target",
            "e11.0",
            "--format",
            "dnsmasq",
            *script,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    run = work / name
    run.mkdir()
    disk = make_disk(run / "root.img")
    with Namespace("aoenb") as ns:
        ns.add_tap("tap0")
        with Dnsmasq(ns, "tap0", tftp, fragment.stdout, run), Vblade(ns, 11, 0, "tap0", disk):
            http = (
                ns.popen(
                    [
                        sys.executable,
                        "-m",
                        "http.server",
                        "--bind",
                        NAS_IP,
                        "--directory",
                        str(tftp),
                        str(HTTP_PORT),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                if transport == "http"
                else None
            )
            try:
                vm = VM(
                    ns,
                    run / "console.log",
                    netboot=True,
                    mac=MAC,
                    firmware=firmware,
                    option_rom=firmware == "bios",
                )
                with vm:
                    seen = watch(vm, 900)
                    vm.wait_exit(60)
            finally:
                if http is not None:
                    http.terminate()
                    http.wait(timeout=10)
        if transport == "http":
            log = (run / "dnsmasq.log").read_text(errors="replace")
            if f"sent {tftp}/{HOST}/vmlinuz" in log:
                raise SystemExit(f"{name}: the kernel went over TFTP, not HTTP")
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    kernel = kernel_with_aoe()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        initrd = dracutdir.build(work / "initrd.img", kernel.version, work, systemd=True)
        tftp = work / "tftp"
        tftp.mkdir()
        (tftp / SNPONLY.name).write_bytes(SNPONLY.read_bytes())
        config = Config(BootConfig(Target(11, 0, 1), (MAC,)), PublishConfig(str(tftp)))
        publish.after_add(
            root=work / "root",
            config=config,
            kver=kernel.version,
            kernel=kernel.image,
            initrd=initrd,
            options=(CONSOLE_ARGS, "root=/dev/etherd/e11.0p1"),
        )
        sizes = sum(p.stat().st_size for p in (tftp / HOST).iterdir() if p.name != "boot.ipxe")
        results = {}
        for firmware in ("bios", "uefi"):
            for transport in ("tftp", "http"):
                seen = boot(work, tftp, firmware, transport)
                results[(firmware, transport)] = seen
                print(
                    f"{firmware:4} {transport:4}: iPXE prompt to root mounted "
                    f"{seen['root'] - seen['prompt']:6.1f} s",
                    flush=True,
                )
    print(
        f"\naccel {accel()}, one boot each, kernel {kernel.version}, kernel + initramfs "
        f"{sizes / 1e6:.0f} MB (uncompressed initramfs)"
    )
    print(
        f"{'':10} {'prompt->root':>12} {'->script':>8} {'menu':>6} {'fetch+start':>12} "
        f"{'kernel->root':>13}"
    )
    for (firmware, transport), seen in results.items():
        print(
            f"{firmware:4} {transport:5} {seen['root'] - seen['prompt']:12.1f} "
            f"{seen['script'] - seen['prompt']:8.1f} {seen['booting'] - seen['script']:6.1f} "
            f"{seen['kernel'] - seen['booting']:12.1f} {seen['root'] - seen['kernel']:13.1f}"
        )
    menu = [seen["booting"] - seen["script"] for seen in results.values()]
    print(
        f"menu timeout (choose --timeout 3000): {min(menu):.1f}-{max(menu):.1f} s of every "
        "boot; any key stops the countdown"
    )


if __name__ == "__main__":
    main()
