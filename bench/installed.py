"""Benchmark the real installed system: root over AoE against root on a local disk, one run.

The system disk is aoelab.sysimage's Debian 13 on Fedora's layout. One copy is set up to boot
from AoE as a user does it (aoelab.installed: the package, install-entry from the pyz,
kernel-install add); the other is the same disk just before that, left as the distribution
made it. Both were prepared on this host, so their initramfs images are generic.

1. Boot time: wall seconds from qemu start to "Reached target multi-user.target" on the serial
   console, --runs times each, interleaved (AoE, local, AoE, local...). AoE: vblade serves the
   system and data disks and dnsmasq runs as `aoeboot nas-config` says, as
   tests/e2e/test_installed_system.py boots it; the box boots the entry's kernel, initramfs and
   options. Local: localboot.boot_local, the stock kernel and initramfs from a virtio disk. Both
   are stopped with the ACPI power button after the figure is taken. Goal: AoE / local <= 1.2.
2. Initramfs size, hostonly, each built inside the booted box for its own hardware (what a box
   that manages its own kernels gets): in a local-disk boot of the untouched copy, the
   distribution alone (`dracut --force --hostonly`); in an AoE boot, what our plugin publishes
   (`kernel-install add` once the lab's hostonly="no" drop-in is gone, Debian's 50-dracut.install
   then building with --add-confdir hostonly): the initramfs the entry names, also checked on
   the NAS. The AoE one is then booted once, to show it works. Goal: AoE / local <= 1.2.
   For context, the generic pair the timed boots booted.
3. The image build (debtree.base_tree): cold and warm if it had to build, else warm.

TCG on a shared machine: the boots take minutes, dracut inside a guest takes minutes more.
Run as root, with the project's venv: .venv/bin/python -m bench.installed [--runs N]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from aoeboot import cpio
from aoelab import (
    cache,
    chroot,
    datadisk,
    debtree,
    disklayout,
    imagerun,
    installed,
    localboot,
    package,
    qemumonitor,
    sysimage,
)
from aoelab.dnsmasq import Dnsmasq
from aoelab.netns import Namespace
from aoelab.vblade import Vblade
from aoelab.vm import VM, accel
from bench import REPO

GOAL_BOOT = 1.2
GOAL_INITRAMFS = 1.2
BOOT_TIMEOUT = 600  # TCG, systemd and NetworkManager on two loaded cores
DRACUT_TIMEOUT = 3600  # a boot, then dracut under TCG
CONSOLE = installed.CONSOLE  # as the tests boot it
KMOD = re.compile(r"\.ko(\.(xz|zst|gz))?$")
LOCAL_HOSTONLY = "/var/tmp/aoelab-hostonly.img"
LOCAL_STEP = (
    f"dracut --force --hostonly {LOCAL_HOSTONLY} > /var/tmp/aoelab-dracut.log 2>&1"
    " || { tail -20 /var/tmp/aoelab-dracut.log; exit 1; };"
    f" stat -c %s {LOCAL_HOSTONLY}"
)
# kernel-install as the box runs it, hostonly: without the lab's drop-in and the generic image
AOE_STEP = (
    "k=$(uname -r);"
    " rm -f /etc/dracut.conf.d/99-aoelab-generic.conf /boot/initramfs-$k.img;"
    " kernel-install -v add $k /boot/vmlinuz-$k > /var/tmp/aoelab-kernel-install.log 2>&1"
    " || { tail -20 /var/tmp/aoelab-kernel-install.log; exit 1; };"
    " sed -n 's/^initrd //p' /boot/loader/entries/*-$k.conf;"
    " stat -c %s /boot/initramfs-$k.img"
)


def say(text: str) -> None:
    print(text, flush=True)


@dataclass(frozen=True)
class Lab:
    local: Path  # the system disk as the distribution made it
    aoe: Path  # the same, set up to boot from AoE
    data: Path  # the data disk (e11.1)
    nas: Path  # the NAS's share: published kernels
    entry: installed.Entry  # the AoE entry's files, copied out


@dataclass(frozen=True)
class Boot:
    seconds: float  # qemu start to multi-user.target
    clean: bool  # powered off by itself after the power button


@dataclass(frozen=True)
class Initramfs:
    size: int
    files: int
    modules: int  # kernel modules (.ko*)
    dracut: tuple[str, ...]  # dracut modules, from usr/lib/dracut/modules.txt

    def line(self) -> str:
        return f"{self.size} bytes ({self.files} files, {self.modules} kernel modules)"


def examine(image: Path) -> Initramfs:
    names = cpio.names(image)
    modules = {n for n in names if KMOD.search(n)}
    listed = cpio.contents(image, lambda name: name.endswith("dracut/modules.txt"))
    dracut = tuple(sorted({m for data in listed.values() for m in data.decode().split()}))
    return Initramfs(image.stat().st_size, len(set(names)), len(modules), dracut)


# ---------------------------------------------------------------- preparing the disks


def image_build() -> str:
    """Time debtree.base_tree: cold (and then warm) if it has to build, else warm."""
    tarball = cache.cache_dir() / "trees" / debtree.tree_name()
    cached = tarball.exists()
    start = time.monotonic()
    debtree.base_tree()
    first = time.monotonic() - start
    if cached:
        return f"image build (debtree.base_tree): cached, warm {first:.1f} s (no build this run)"
    start = time.monotonic()
    debtree.base_tree()
    return (
        f"image build (debtree.base_tree): cold {first:.1f} s (built), "
        f"warm {time.monotonic() - start:.1f} s"
    )


def aoeboot_cli(*args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "aoeboot", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    if proc.returncode != 0:
        raise SystemExit(f"aoeboot {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def prepare(work: Path) -> Lab:
    """The system disk as tests/e2e/test_installed_system.py's `box` sets it up; a copy of it
    taken just before aoeboot goes in is the local disk."""
    nas = work / "nas"
    # the NAS's publishing directory, as its admin makes it: publish never makes a destination
    (nas / PurePosixPath(installed.PUBLISH_DIR).relative_to(installed.NAS_MOUNT)).mkdir(
        parents=True
    )
    local = sysimage.system_image(work / "local.img", extra_fstab=datadisk.data_fstab_line())
    aoe = work / "aoe.img"
    subprocess.run(["cp", "--sparse=always", str(local), str(aoe)], check=True)
    data = datadisk.make_data_disk(work / "data.img")
    pyz = installed.build_pyz(work / "aoeboot.pyz")
    with sysimage.mounted(aoe) as target:
        package.install_aoeboot(target)
        installed.make_generic(target)
        installed.add_grub_model(target)
        installed.mount_nas_share(target, nas)
        (target / "etc/aoeboot").mkdir(exist_ok=True)
        (target / "etc/aoeboot/aoeboot.conf").write_text(
            f"[publish]\ndestination = {installed.PUBLISH_DIR}\n"
        )
        installed.install_entry_from_installer(
            pyz, target, "--target", installed.TARGET, "--iface", installed.MAC
        )
        kver = sysimage.boot_kernels(target)[-1]
        with installed.nas_bind(target, nas):
            chroot.chroot_run(target, ["kernel-install", "add", kver, f"/boot/vmlinuz-{kver}"])
        entry = installed.read_entry(target, kver, work)
    return Lab(local, aoe, data, nas, entry)


def local_files(lab: Lab, work: Path) -> tuple[Path, Path]:
    """The local disk's stock kernel and initramfs (what boot_local boots), copied out."""
    kver = lab.entry.kver
    with sysimage.mounted(lab.local, read_only=True) as target:
        vmlinuz, initrd = work / f"local-vmlinuz-{kver}", work / f"local-initrd.img-{kver}"
        shutil.copyfile(target / f"boot/vmlinuz-{kver}", vmlinuz)
        shutil.copyfile(target / f"boot/initrd.img-{kver}", initrd)
    return vmlinuz, initrd


# ---------------------------------------------------------------- booting


@contextlib.contextmanager
def nas_serving(lab: Lab, workdir: Path) -> Iterator[Namespace]:
    """A namespace with the NAS on tap0: vblade for both disks, dnsmasq as nas-config says."""
    fragment = aoeboot_cli(
        "nas-config", "--mac", installed.MAC, "--target", installed.TARGET, "--format", "dnsmasq"
    )
    with Namespace("aoeinst") as ns:
        ns.add_tap("tap0")
        with (
            Vblade(ns, installed.SHELF, 0, "tap0", lab.aoe),
            Vblade(ns, installed.SHELF, 1, "tap0", lab.data),
            Dnsmasq(ns, "tap0", lab.nas / "aoeboot", fragment, workdir),
        ):
            yield ns


def boot_aoe(lab: Lab, workdir: Path, initrd: Path) -> Boot:
    workdir.mkdir()
    monitor = workdir / "monitor.sock"
    with nas_serving(lab, workdir) as ns:
        vm = VM(
            ns,
            workdir / "console.log",
            kernel=lab.entry.linux,
            initrd=initrd,
            append=f"{CONSOLE} {lab.entry.options}",
            mac=installed.MAC,
            memory=1024,
            extra=[
                *installed.vm_extra(workdir / "probe.log", lab.nas),
                "-monitor",
                f"unix:{monitor},server=on,wait=off",
            ],
        )
        with vm:
            reached = vm.wait_for(localboot.MULTI_USER, BOOT_TIMEOUT)
            seconds = vm.elapsed()
            if reached is None:
                raise SystemExit(
                    f"AoE boot: no multi-user.target in {seconds:.0f} s; "
                    f"console {workdir / 'console.log'}:\n{vm.text()[-3000:]}"
                )
            clean = qemumonitor.power_off(vm, monitor)
    return Boot(seconds, clean)


def boot_local(lab: Lab, workdir: Path) -> Boot:
    workdir.mkdir()
    done = localboot.boot_local(lab.local, workdir, kernel=lab.entry.kver, timeout=BOOT_TIMEOUT)
    if done.multi_user is None:
        raise SystemExit(
            f"local boot: no multi-user.target; console {workdir / 'console.log'}:"
            f"\n{done.console[-3000:]}"
        )
    return Boot(done.multi_user, done.powered_off)


def probed(vm: VM, workdir: Path, name: str) -> installed.Step:
    """Run the VM until its probe is done; the one step's result."""
    probe = workdir / "probe.log"
    with vm:
        done = installed.wait_for_probe(probe, vm, DRACUT_TIMEOUT)
        if done:
            vm.wait_exit(300)
    steps = installed.steps(probe.read_text(errors="replace") if probe.exists() else "")
    if not done or name not in steps:
        raise SystemExit(
            f"{name}: the probe did not report; console {workdir / 'console.log'}:"
            f"\n{vm.text()[-3000:]}"
        )
    if steps[name].rc != 0:
        raise SystemExit(f"{name} failed inside the box (rc {steps[name].rc}):\n{steps[name].out}")
    return steps[name]


def local_hostonly(lab: Lab, work: Path, vmlinuz: Path, initrd: Path) -> Path:
    """The distribution's own hostonly initramfs, built in a local-disk boot; copied out."""
    workdir = work / "hostonly-local"
    workdir.mkdir()
    with sysimage.mounted(lab.local) as target:
        installed.write_probe(target, {"hostonly": ["sh", "-c", LOCAL_STEP]})
    with Namespace("aoelocal") as ns:
        ns.add_tap("tap0")
        vm = VM(
            ns,
            workdir / "console.log",
            kernel=vmlinuz,
            initrd=initrd,
            append=f"{disklayout.ROOT_CMDLINE} systemd.show_status=1",
            disk=lab.local,
            memory=1024,
            extra=installed.vm_extra(workdir / "probe.log", None),
        )
        probed(vm, workdir, "hostonly")
    out = work / "local-hostonly.img"
    with sysimage.mounted(lab.local) as target:
        shutil.copyfile(target / LOCAL_HOSTONLY.lstrip("/"), out)
        remove_probe(target)
    return out


def aoe_hostonly(lab: Lab, work: Path) -> tuple[Path, str, list[Path]]:
    """What the plugin makes in an AoE boot once the lab's generic drop-in is gone: the
    initramfs the entry names (copied out), the entry's initrd line, the NAS's initrd files."""
    workdir = work / "hostonly-aoe"
    workdir.mkdir()
    with sysimage.mounted(lab.aoe) as target:
        installed.write_probe(
            target, {"hostonly": ["sh", "-c", AOE_STEP]}, mounts=[installed.NAS_MOUNT]
        )
    with nas_serving(lab, workdir) as ns:
        vm = VM(
            ns,
            workdir / "console.log",
            kernel=lab.entry.linux,
            initrd=lab.entry.initrd,
            append=f"{CONSOLE} {lab.entry.options}",
            mac=installed.MAC,
            memory=1024,
            extra=installed.vm_extra(workdir / "probe.log", lab.nas),
        )
        step = probed(vm, workdir, "hostonly")
    named = step.out.split()[0]
    out = work / "aoe-hostonly.img"
    with sysimage.mounted(lab.aoe) as target:
        shutil.copyfile(target / "boot" / named.lstrip("/"), out)
        remove_probe(target)
    return out, named, sorted(lab.nas.glob("aoeboot/*/initrd-*"))


def remove_probe(target: Path) -> None:
    (target / "etc/systemd/system/multi-user.target.wants/aoelab-probe.service").unlink()


# ---------------------------------------------------------------- the run


def verdict(name: str, ratio: float, goal: float, figures: str) -> str:
    return (
        f"goal {name} <= {goal}x: {'PASS' if ratio <= goal else 'FAIL'} "
        f"({figures}, ratio {ratio:.3f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Run as root. Prints each figure, then a PASS/FAIL line per goal (exit 0 either "
        "way; non-zero only when something broke).",
    )
    parser.add_argument("--runs", type=int, default=3, help="boots of each kind (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: it makes namespaces, loop devices and VMs")
    began = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        try:
            package.build_wheel(Path(tmp))  # what install_aoeboot needs of this interpreter
        except imagerun.SysImageError as err:
            raise SystemExit(
                f"{sys.executable} cannot build aoeboot's wheel: run it with the "
                f"project's venv (tools/setup): .venv/bin/python -m bench.installed\n"
                f"{str(err)[-500:]}"
            ) from None
    say(image_build())
    work = Path(tempfile.mkdtemp(prefix="bench-installed.", dir="/var/tmp"))
    try:
        results = measure(work, args.runs)
    finally:
        if args.keep:
            say(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    say(f"whole run: {time.monotonic() - began:.0f} s")
    for line in results:
        say(line)


def measure(work: Path, runs: int) -> list[str]:
    """Print the figures as they come; return the goal lines."""
    start = time.monotonic()
    lab = prepare(work)
    say(
        f"prepared both disks (system_image, install_aoeboot, install-entry, kernel-install add):"
        f" {time.monotonic() - start:.0f} s; kernel {lab.entry.kver}, accel {accel()}"
    )
    say(f"AoE options: {lab.entry.options}")
    vmlinuz, stock_initrd = local_files(lab, work)

    times: dict[str, list[float]] = {"aoe": [], "local": []}
    for run in range(1, runs + 1):
        for name in ("aoe", "local"):
            workdir = work / f"boot-{name}-{run}"
            boot = (
                boot_aoe(lab, workdir, lab.entry.initrd)
                if name == "aoe"
                else boot_local(lab, workdir)
            )
            times[name].append(boot.seconds)
            say(
                f"run {run}: {name:5} multi-user.target at {boot.seconds:7.2f} s"
                f"{'' if boot.clean else ' (did NOT power off cleanly)'}"
            )
    aoe, local = statistics.median(times["aoe"]), statistics.median(times["local"])
    say(
        f"qemu start to multi-user.target, median of {runs}: AoE {aoe:.2f} s, "
        f"local virtio {local:.2f} s, ratio {aoe / local:.3f}"
    )

    generic_aoe, generic_local = examine(lab.entry.initrd), examine(stock_initrd)
    say(
        f"initramfs generic (what the timed boots booted, both built on this host): AoE "
        f"{generic_aoe.line()} (the entry's, plugin + lab drop-in hostonly=no); local "
        f"{generic_local.line()} (the stock /boot/initrd.img); ratio "
        f"{generic_aoe.size / generic_local.size:.3f}"
    )

    say(
        "hostonly initramfs, local: a local-disk boot running `dracut --force --hostonly` "
        "(dracut under TCG: minutes)..."
    )
    start = time.monotonic()
    local_img = local_hostonly(lab, work, vmlinuz, stock_initrd)
    say(f"  done in {time.monotonic() - start:.0f} s")
    say(
        "hostonly initramfs, AoE: an AoE boot running `kernel-install add` without the lab's "
        "hostonly=no drop-in (dracut under TCG: minutes)..."
    )
    start = time.monotonic()
    aoe_img, named, published = aoe_hostonly(lab, work)
    say(f"  done in {time.monotonic() - start:.0f} s")
    hostonly_aoe, hostonly_local = examine(aoe_img), examine(local_img)
    on_nas = [
        p
        for p in published
        if p.stat().st_size == hostonly_aoe.size and p.read_bytes() == aoe_img.read_bytes()
    ]
    say(
        f"initramfs hostonly (built in the booted box): AoE {hostonly_aoe.line()} (the entry's "
        f"{named}; on the NAS: {on_nas[0].relative_to(lab.nas) if on_nas else 'NOT FOUND'}); "
        f"local {hostonly_local.line()} (dracut --hostonly)"
    )
    extra = sorted(set(hostonly_aoe.dracut) - set(hostonly_local.dracut))
    fewer = sorted(set(hostonly_local.dracut) - set(hostonly_aoe.dracut))
    say(
        f"hostonly dracut modules only in AoE: {' '.join(extra) or '-'}; "
        f"only in local: {' '.join(fewer) or '-'}"
    )

    say("booting the hostonly AoE initramfs once...")
    check = boot_aoe(lab, work / "boot-aoe-hostonly", aoe_img)
    say(
        f"AoE boot with the hostonly initramfs: multi-user.target at {check.seconds:.2f} s"
        f"{'' if check.clean else ' (did NOT power off cleanly)'}"
    )

    return [
        verdict(
            "boot AoE / local",
            aoe / local,
            GOAL_BOOT,
            f"median AoE {aoe:.2f} s / local {local:.2f} s over {runs} runs",
        ),
        verdict(
            "initramfs hostonly AoE / local",
            hostonly_aoe.size / hostonly_local.size,
            GOAL_INITRAMFS,
            f"AoE {hostonly_aoe.size} / local {hostonly_local.size} bytes",
        ),
    ]


if __name__ == "__main__":
    main()
