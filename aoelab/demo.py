"""The demo: the main job end to end, for real, on this machine.

A NAS in a network namespace: vblade serves a disk whose partition 1 holds a small installed
system, dnsmasq serves DHCP and TFTP. We mount that system as the installer would
(/mnt/sysimage), run `aoeboot install-entry` on it, then the real `kernel-install add`
(systemd's, with our plugin) for the Debian kernel: it builds the initramfs with our dracut
module, writes the Boot Loader Spec entry and publishes kernel, initramfs and iPXE script to the
NAS's TFTP root. A qemu VM then netboots with its iPXE ROM (DHCP from the config
`aoeboot nas-config` prints) and mounts its root over AoE. Prints a report with timings.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from aoeboot import config as configuration
from aoelab import dracutdir
from aoelab.disk import CLEAN, MARKER, PART_START, make_disk
from aoelab.dnsmasq import Dnsmasq
from aoelab.kernel import Kernel, installed_kernel
from aoelab.netns import Namespace
from aoelab.vblade import Vblade
from aoelab.vm import VM, accel, printk_time

REPO = Path(__file__).resolve().parent.parent
MACHINE_ID = "a0e0b007a0e0b007a0e0b007a0e0b007"
MAC = "52:54:00:12:34:56"


def step(text: str) -> float:
    print(f"==> {text}", flush=True)
    return time.monotonic()


def aoeboot(*args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "aoeboot", *args], capture_output=True, text=True, cwd=REPO
    )
    if out.returncode != 0:
        sys.exit(f"demo: aoeboot {' '.join(args)} failed: {out.stderr.strip()}")
    return out.stdout


def install(work: Path, disk: Path, kernel: Kernel, report: list[tuple[str, float]]) -> None:
    """Installer side: mount the new system, install-entry, kernel-install add."""
    sysimage = work / "sysimage"
    sysimage.mkdir()
    subprocess.run(
        ["mount", "-o", f"loop,offset={PART_START * 512}", str(disk), str(sysimage)], check=True
    )
    try:
        (sysimage / "boot").mkdir()
        (sysimage / "etc/kernel").mkdir(parents=True)
        (sysimage / "etc/kernel/install.conf").write_text("layout=bls\n")
        (sysimage / "etc/kernel/cmdline").write_text("console=ttyS0,115200 panic=-1\n")
        step(f"aoeboot install-entry --target e11.0p1 --iface {MAC} --root {sysimage}")
        print(
            aoeboot(
                "install-entry", "--target", "e11.0p1", "--iface", MAC, "--root", str(sysimage)
            ),
            end="",
        )
        # publishing: the NAS's TFTP root (here a directory; an NFS mount or ssh:// on a real NAS).
        # The NAS's side makes it: publish never makes a destination (it may be a share that
        # is not mounted)
        (work / "tftp").mkdir()
        config = configuration.load(sysimage)
        configuration.save(
            replace(config, publish=replace(config.publish, destination=str(work / "tftp"))),
            sysimage,
        )
        t = step(
            f"kernel-install add {kernel.version}  (our plugin: initramfs with AoE, entry, "
            "publish; about a minute)"
        )
        env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            "BOOT_ROOT": str(sysimage / "boot"),
            "KERNEL_INSTALL_CONF_ROOT": str(sysimage / "etc/kernel"),
            "MACHINE_ID": MACHINE_ID,
            "AOEBOOT_ROOT": str(sysimage),
            "dracutbasedir": str(dracutdir.overlay(work)),
            "KERNEL_INSTALL_PLUGINS": " ".join(
                [
                    str(REPO / "kernel-install.d/60-aoeboot.install"),
                    "/usr/lib/kernel/install.d/90-loaderentry.install",
                ]
            ),
        }
        subprocess.run(
            ["kernel-install", "add", kernel.version, str(kernel.image)], env=env, check=True
        )
        report.append(("kernel-install add (dracut, entry, publish)", time.monotonic() - t))
        entry = sysimage / "boot/loader/entries" / f"{MACHINE_ID}-{kernel.version}.conf"
        print(f"--- {entry.name}\n{entry.read_text()}", end="")
        state = json.loads((sysimage / "var/lib/aoeboot/publish.json").read_text())
        print(
            f"--- published: {state['state']}, {state['kernels']} to {state['destination']}"
            f"/{state['host']}"
        )
    finally:
        subprocess.run(["umount", str(sysimage)], check=True)


def main() -> int:
    kernel = installed_kernel()
    if kernel is None:
        sys.exit("demo: no installed kernel with aoe.ko; run tools/setup first")
    report: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="aoeboot-demo.") as tmp:
        work = Path(tmp)
        step("the NAS's disk: partition 1 holds a small installed system")
        disk = make_disk(work / "nas-disk.img", size_mib=256)
        install(work, disk, kernel, report)

        fragment = aoeboot("nas-config", "--mac", MAC, "--target", "e11.0", "--format", "dnsmasq")
        print(f"--- the NAS's dnsmasq configuration (aoeboot nas-config):\n{fragment}", end="")
        t = step(
            f"netbooting a VM ({accel()}, iPXE ROM): DHCP+TFTP from dnsmasq, root over AoE "
            "from vblade e11.0"
        )
        with Namespace("aoedemo") as nas:
            nas.add_tap("tap0")
            with (
                Dnsmasq(nas, "tap0", work / "tftp", fragment, work),
                Vblade(nas, 11, 0, "tap0", disk),
            ):
                vm = VM(nas, work / "console.log", netboot=True, mac=MAC)
                with vm:
                    match = vm.wait_for(MARKER + r".*", 300)
                    vm.wait_exit(60)
        console = vm.text()
        report.append(("VM power-on to root mounted, shut down", time.monotonic() - t))
        if not match:
            print(console[-3000:])
            print("demo: FAILED: the VM did not mount its root over AoE")
            return 1
        mounted = printk_time(r"EXT4-fs \(etherd!e11\.0p1\): mounted", console)
        print(f"\n{match.group(0)}")
        print("\n---- aoeboot demo report ----")
        print(f"kernel {kernel.version}, netbooted with iPXE, root on AoE target e11.0p1")
        for name, seconds in report:
            print(f"{name:45} {seconds:6.1f} s")
        if mounted is not None:
            print(f"{'guest: kernel start to root mounted':45} {mounted:6.1f} s")
        print(
            f"{'clean shutdown (root remounted read-only)':45} "
            f"{'yes' if CLEAN in console else 'NO'}"
        )
        print("result: OK, the box booted its root over AoE")
    return 0


if __name__ == "__main__":
    sys.exit(main())
