"""The demo: the main job end to end, for real, on this machine.

A NAS (vblade) in a network namespace serves a disk whose partition 1 holds a small installed
system. We mount that system as the installer would (/mnt/sysimage), run `aoeboot install-entry`
on it, then the real `kernel-install add` (systemd's, with our plugin) for the Debian kernel,
which builds the initramfs with our dracut module and writes the Boot Loader Spec entry. A qemu VM
then boots exactly what that entry says, with its root disk over AoE. Prints a report with timings.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aoelab import dracutdir
from aoelab.disk import CLEAN, MARKER, PART_START, make_disk
from aoelab.kernel import installed_kernel
from aoelab.netns import Namespace
from aoelab.vblade import Vblade
from aoelab.vm import VM, accel, printk_time

REPO = Path(__file__).resolve().parent.parent
MACHINE_ID = "a0e0b007a0e0b007a0e0b007a0e0b007"


def step(text: str) -> float:
    print(f"==> {text}", flush=True)
    return time.monotonic()


def main() -> int:
    kernel = installed_kernel()
    if kernel is None:
        sys.exit("demo: no installed kernel with aoe.ko; run tools/setup first")
    bindir = Path(sys.executable).parent
    env_path = f"{bindir}:{os.environ['PATH']}"
    report = []
    with tempfile.TemporaryDirectory(prefix="aoeboot-demo.") as tmp:
        work = Path(tmp)
        t = step("making the NAS's disk: partition 1 holds a small installed system")
        disk = make_disk(work / "nas-disk.img", size_mib=128)
        sysimage = work / "sysimage"
        sysimage.mkdir()
        subprocess.run(["mount", "-o", f"loop,offset={PART_START * 512}", str(disk), str(sysimage)],
                       check=True)
        try:
            (sysimage / "boot").mkdir()
            (sysimage / "etc/kernel").mkdir(parents=True)
            (sysimage / "etc/kernel/install.conf").write_text("layout=bls\n")
            t = step("aoeboot install-entry --target e11.0p1 --root " + str(sysimage))
            out = subprocess.run([sys.executable, "-m", "aoeboot", "install-entry", "--target",
                                  "e11.0p1", "--root", str(sysimage)], capture_output=True, text=True,
                                 cwd=REPO)
            print(out.stdout + out.stderr, end="")
            if out.returncode != 0:
                return out.returncode
            t = step(f"kernel-install add {kernel.version} (our plugin builds the initramfs: ~1 min)")
            env = {**os.environ, "PATH": env_path, "BOOT_ROOT": str(sysimage / "boot"),
                   "KERNEL_INSTALL_CONF_ROOT": str(sysimage / "etc/kernel"),
                   "MACHINE_ID": MACHINE_ID, "AOEBOOT_ROOT": str(sysimage),
                   "dracutbasedir": str(dracutdir.overlay(work)),
                   "KERNEL_INSTALL_PLUGINS": " ".join([
                       str(REPO / "kernel-install.d/60-aoeboot.install"),
                       "/usr/lib/kernel/install.d/90-loaderentry.install"])}
            subprocess.run(["kernel-install", "add", kernel.version, str(kernel.image)], env=env,
                           check=True)
            report.append(("kernel-install add (dracut + entry)", time.monotonic() - t))
            entry = sysimage / "boot/loader/entries" / f"{MACHINE_ID}-{kernel.version}.conf"
            print(entry.read_text(), end="")
            fields = {}
            for line in entry.read_text().splitlines():
                key, _, value = line.partition(" ")
                fields.setdefault(key, value.strip())
            linux = sysimage / "boot" / MACHINE_ID / kernel.version / "linux"
            initrd = sysimage / "boot" / MACHINE_ID / kernel.version / "initrd"
            boot_files = work / "boot"
            boot_files.mkdir()
            for path in (linux, initrd):
                (boot_files / path.name).write_bytes(path.read_bytes())
            options = fields["options"]
        finally:
            subprocess.run(["umount", str(sysimage)], check=True)

        t = step(f"booting a VM ({accel()}) from that entry, root over AoE from vblade e11.0")
        with Namespace("aoedemo") as nas:
            nas.add_tap("tap0")
            with Vblade(nas, 11, 0, "tap0", disk):
                vm = VM(nas, work / "console.log", kernel=boot_files / "linux",
                        initrd=boot_files / "initrd", append=options)
                with vm:
                    match = vm.wait_for(MARKER + r".*", 300)
                    vm.wait_exit(60)
        console = vm.text()
        report.append(("VM start to root mounted (wall)", time.monotonic() - t))
        if not match:
            print(console[-3000:])
            print("demo: FAILED: the VM did not mount its root over AoE")
            return 1
        mounted = printk_time(r"EXT4-fs \(etherd!e11\.0p1\): mounted", console)
        print(f"\n{match.group(0)}")
        print("\n---- aoeboot demo report ----")
        print(f"kernel {kernel.version}, boot entry options: {options}")
        for name, seconds in report:
            print(f"{name:40} {seconds:6.1f} s")
        if mounted is not None:
            print(f"{'guest: kernel start to root mounted':40} {mounted:6.1f} s")
        print(f"{'clean shutdown (root remounted ro)':40} {'yes' if CLEAN in console else 'NO'}")
        print("result: the box booted its root over AoE")
    return 0


if __name__ == "__main__":
    sys.exit(main())
