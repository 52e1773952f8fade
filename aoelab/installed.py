"""The real installed system on AoE, as a user gets there: the disk from aoelab.sysimage,
aoeboot installed into it as a package, `install-entry` run from the installer's shell (the
single-file aoeboot.pyz under a bare python3), the distribution's `kernel-install add`, then a
VM that boots it from vblade and reports, from inside, what it sees.

What cannot run here is modelled, and named so: Fedora's 20-grub.install (files/20-grub.install)
writes the boot entry. The NAS's file share (where kernels are published) is the host's
directory given to the VM over virtio-9p and mounted at /srv/nas, as a NAS's NFS share would be.
"""

from __future__ import annotations

import collections
import contextlib
import re
import shlex
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Protocol

from aoelab import (
    chroot,
    datadisk,
    debtree,
    disklayout,
    imagerun,
    loopdev,
    package,
    qemumonitor,
    suspend,
    sysimage,
    vm,
)
from aoelab.netns import Namespace
from aoelab.vblade import Vblade
from aoelab.vm import VM

FILES = Path(__file__).resolve().parent / "files"
REPO = Path(__file__).resolve().parent.parent
PYZ_BUILDER = REPO / "tools" / "build-pyz.py"
SNPONLY = Path("/usr/lib/ipxe/snponly.efi")  # Debian's ipxe: iPXE for UEFI, the firmware's NIC

SHELF, ROOT_PART, BOOT_PART = 11, 3, 2
TARGET = f"e{SHELF}.0p{ROOT_PART}"  # the system disk's root partition: btrfs, or (SERVER) the PV
DATA_TARGET = f"e{SHELF}.1"
MAC = "52:54:00:12:34:56"
MAC2 = "52:54:00:12:34:57"  # a second NIC on the NAS's network: a second path
NAS_MAC = "02:aa:00:00:00:01"  # the NAS towards the box: its tap, or the bridge (lan, several NICs)
NAS_MAC2 = "02:aa:00:00:00:02"  # the NAS's second port, where it has one
NAS_TAG = "nas"
NAS_MOUNT = "/srv/nas"
PUBLISH_DIR = f"{NAS_MOUNT}/aoeboot"
STEP = "AOELAB-STEP"
DONE = "AOELAB-PROBE-DONE"
# The console on ttyS0 with systemd's status lines; no shell, and power off, if the initramfs fails.
# no_console_suspend: a suspend or resume that hangs says where. vm.WATCHDOG: see there.
CONSOLE = (
    "console=ttyS0,115200 systemd.show_status=1 rd.shell=0 rd.emergency=poweroff"
    f" no_console_suspend {vm.WATCHDOG}"
)

PROBE_HEAD = """#!/bin/sh
# aoelab probe: each step's output between markers on the serial console, then power off.
step() {
    name=$1
    shift
    out=$("$@" 2>&1)
    rc=$?
    printf '%s %s rc=%s\\n%s\\n%s-END %s\\n' STEP_MARK "$name" "$rc" "$out" STEP_MARK "$name"
}
"""
PROBE_TAIL = f"""echo DONE_MARK
if [ -e {suspend.REBOOT} ]; then systemctl --no-block reboot; else systemctl --no-block poweroff; fi
"""


def build_pyz(out: Path) -> Path:
    """The single-file aoeboot the installer's shell runs (tools/build-pyz.py)."""
    subprocess.run([str(PYZ_BUILDER), str(out)], check=True, capture_output=True, text=True)
    return out


def install_entry_from_installer(pyz: Path, sysroot: Path, *args: str) -> str:
    """`python3 aoeboot.pyz install-entry --root SYSROOT ...` with the bare system python3 (no
    site-packages: as in the installer, where aoeboot is not installed), while /proc, /sys and
    /dev are bind-mounted into the sysroot as Anaconda does. Returns its output."""
    with chroot.chroot_mounts(sysroot):
        proc = subprocess.run(
            [
                "/usr/bin/python3",
                "-I",
                "-S",
                str(pyz),
                "install-entry",
                "--root",
                str(sysroot),
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=1800,
        )
    if proc.returncode != 0:
        raise imagerun.SysImageError(
            f"install-entry failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}"
        )
    return proc.stdout


GENERIC_DRACUT = """# aoelab: this image is prepared on another machine than the one that boots it,
# so its initramfs images are generic, as Fedora's dracut-config-generic makes them.
hostonly="no"
"""


def make_generic(target: Path) -> None:
    (target / "etc/dracut.conf.d/99-aoelab-generic.conf").write_text(GENERIC_DRACUT)


def add_rescue(target: Path) -> None:
    """What Fedora's 51-dracut-rescue.install leaves once, at the first kernel install: a copy of
    the kernel as vmlinuz-0-rescue-MACHINEID and a generic initramfs built before aoeboot was
    there (here the distribution's stock image: it has aoe.ko, not our dracut module)."""
    kver = sysimage.boot_kernels(target)[-1]
    boot = target / "boot"
    shutil.copy(boot / f"vmlinuz-{kver}", boot / f"vmlinuz-0-rescue-{sysimage.MACHINE_ID}")
    shutil.copy(boot / f"initrd.img-{kver}", boot / f"initramfs-0-rescue-{sysimage.MACHINE_ID}.img")


def add_grub_model(target: Path) -> None:
    """Fedora's 20-grub.install, modelled (see files/20-grub.install)."""
    plugin = target / "usr/lib/kernel/install.d/20-grub.install"
    shutil.copy(FILES / "20-grub.install", plugin)
    plugin.chmod(0o755)


def mount_nas_share(target: Path, nas_dir: Path) -> None:
    """The NAS's share at /srv/nas: bind-mounted while the image is prepared here (see
    `nas_bind`), virtio-9p from fstab when the VM runs."""
    (target / NAS_MOUNT.lstrip("/")).mkdir(parents=True, exist_ok=True)
    fstab = target / "etc/fstab"
    line = f"{NAS_TAG} {NAS_MOUNT} 9p trans=virtio,version=9p2000.L,nofail 0 0\n"
    if line not in fstab.read_text():
        with open(fstab, "a") as handle:
            handle.write(line)


@contextlib.contextmanager
def nas_bind(target: Path, nas_dir: Path) -> Iterator[None]:
    """The NAS's share at /srv/nas in the target while it is prepared here."""
    point = target / NAS_MOUNT.lstrip("/")
    point.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "--bind", str(nas_dir), str(point)], check=True)
    try:
        yield
    finally:
        subprocess.run(["umount", str(point)], check=True)


def write_probe(
    target: Path, steps: Mapping[str, Sequence[str]], mounts: Sequence[str] = ()
) -> None:
    """Install the probe: each step an argv run once multi-user.target is reached (and the
    file systems at `mounts`, which may come later, are mounted: the probe fails without)."""
    body = "".join(f"step {shlex.quote(name)} {shlex.join(argv)}\n" for name, argv in steps.items())
    script = target / "usr/local/sbin/aoelab-probe"
    script.parent.mkdir(parents=True, exist_ok=True)
    text = (PROBE_HEAD + body + PROBE_TAIL).replace("STEP_MARK", STEP).replace("DONE_MARK", DONE)
    script.write_text(text)
    script.chmod(0o755)
    unit = target / "etc/systemd/system/aoelab-probe.service"
    text = (FILES / "aoelab-probe.service").read_text()
    if mounts:
        text = text.replace("[Unit]\n", f"[Unit]\nRequiresMountsFor={' '.join(mounts)}\n")
    unit.write_text(text)
    wants = target / "etc/systemd/system/multi-user.target.wants/aoelab-probe.service"
    wants.parent.mkdir(parents=True, exist_ok=True)
    if not wants.is_symlink():
        wants.symlink_to("/etc/systemd/system/aoelab-probe.service")


@dataclass(frozen=True)
class Step:
    rc: int
    out: str


def steps(console: str) -> dict[str, Step]:
    """What each probe step printed (the console may carry kernel lines in between)."""
    found = {}
    pattern = rf"^{STEP} (\S+) rc=(\d+)\r?\n(.*?)^{STEP}-END \1\r?$"
    for match in re.finditer(pattern, console, re.M | re.S):
        found[match.group(1)] = Step(int(match.group(2)), match.group(3).replace("\r", ""))
    return found


@dataclass(frozen=True)
class Entry:
    """A boot entry's linux, initrd and options, as a boot loader would load them."""

    kver: str
    linux: Path
    initrd: Path
    options: str


def read_entry(target: Path, kver: str, workdir: Path) -> Entry:
    """The entry of `kver` under the mounted target's /boot, with its files copied out."""
    from aoeboot import bls

    paths = bls.entries_for(target / "boot", kver)
    if len(paths) != 1:
        raise imagerun.SysImageError(f"expected one boot entry for {kver}, found {paths}")
    entry = bls.BootEntry.read(paths[0])
    initrds = entry.get_all("initrd")
    if len(initrds) != 1:
        raise imagerun.SysImageError(f"{paths[0]} names {len(initrds)} initrds: {initrds}")
    linux = workdir / f"vmlinuz-{kver}"
    initrd = workdir / f"initrd-{kver}"
    shutil.copyfile(target / "boot" / str(entry.get("linux")).lstrip("/"), linux)
    shutil.copyfile(target / "boot" / initrds[0].lstrip("/"), initrd)
    return Entry(kver, linux, initrd, entry.options.render())


def vm_extra(probe_log: Path, nas_dir: Path | None) -> tuple[str, ...]:
    """The probe's serial port (ttyS1, after the console's ttyS0) and the NAS's share."""
    extra = ("-serial", f"file:{probe_log}")
    if nas_dir is None:
        return extra
    return extra + ("-virtfs", f"local,path={nas_dir},mount_tag={NAS_TAG},security_model=none")


# A box that for this long wrote nothing on either serial port, and in the last STALL_WINDOW s of
# that took almost nothing from the wire (STALLED_BYTES: a root disk at work moves far more), has
# stalled. Seen under TCG with two vCPUs, twice in CI right after the initrd's switch-root on the
# e1000 boot, silent from then on; the second time it went on sending frames, so a rule that
# counted those waited out the 15 min. A frozen guest, a NIC that takes no frame (qemu then stops
# reading its tap) and a NAS gone deaf all take nothing. The resume hangs of suspend.ResumeHung
# look the same. A box stuck on its own says so on the console (systemd's start jobs).
FROZEN_AFTER = 240
STALL_WINDOW = 60
STALLED_BYTES = 64 << 10


class GuestFroze(AssertionError):
    """The box went silent on both serial ports for FROZEN_AFTER s and took next to nothing
    from the wire in the last STALL_WINDOW s of it."""


class Watched(Protocol):
    """What wait_for_probe reads of a VM: its qemu, its console, its age (a test's stand-in
    has no qemu)."""

    @property
    def proc(self) -> subprocess.Popen[bytes] | None: ...
    @property
    def console(self) -> Path: ...
    def text(self) -> str: ...
    def elapsed(self) -> float: ...


class StallWatch:
    """Raises GuestFroze from check() once the box has stalled: silent on `logs` (its serial
    ports) for FROZEN_AFTER s while taking next to nothing from `wire` (bytes from the box and
    to it so far) in the last STALL_WINDOW s."""

    def __init__(
        self, vm: Watched, logs: Sequence[Path], wire: Callable[[], tuple[int, int]]
    ) -> None:
        self.vm, self.logs, self.wire = vm, logs, wire
        self.last_written, self.since_written = -1.0, (0, 0)
        self.window: collections.deque[tuple[float, int]] = collections.deque()

    def check(self) -> None:
        now, counted = time.time(), self.wire()
        written = max((p.stat().st_mtime for p in self.logs if p.exists()), default=0.0)
        if written != self.last_written:  # the box wrote: count the wire from here
            self.last_written, self.since_written = written, counted
        self.window.append((now, counted[1]))
        while self.window[0][0] < now - STALL_WINDOW:
            self.window.popleft()
        silent, lately = now - self.last_written, counted[1] - self.window[0][1]
        if silent > FROZEN_AFTER and lately < STALLED_BYTES:
            sent, taken = (a - b for a, b in zip(counted, self.since_written))
            tail = self.vm.text().rstrip().rsplit("\n", 1)[-1]
            raise GuestFroze(
                f"the box stalled {self.vm.elapsed():.0f} s into its boot: nothing on its "
                f"consoles for {silent:.0f} s, in which it sent {sent} bytes and took "
                f"{taken} ({lately} in the last {STALL_WINDOW} s), after {tail!r}"
            )


def wait_for_probe(
    probe_log: Path,
    vm: Watched,
    timeout: float,
    wire: Callable[[], tuple[int, int]] | None = None,
) -> bool:
    """Until the probe says it is done (True), qemu exits or time runs out (False). With `wire`
    (bytes from the box and to it so far), raise GuestFroze once the box has stalled."""
    deadline = time.monotonic() + timeout
    watch = StallWatch(vm, (probe_log, vm.console), wire) if wire is not None else None
    while time.monotonic() < deadline:
        if probe_log.exists() and DONE in probe_log.read_text(errors="replace"):
            return True
        if vm.proc is not None and vm.proc.poll() is not None:
            break
        if watch is not None:
            watch.check()
        time.sleep(0.5)
    return probe_log.exists() and DONE in probe_log.read_text(errors="replace")


def set_aside(workdir: Path) -> None:
    """Keep a stalled boot's consoles as froze-*.log, so that the next boot starts afresh."""
    for name in ("console.log", "probe.log"):
        if (workdir / name).exists():
            (workdir / name).replace(workdir / f"froze-{name}")
    (workdir / "monitor.sock").unlink(missing_ok=True)


@dataclass(frozen=True)
class Box:
    """The box's disks as the NAS serves them, and what installing it said."""

    disk: Path
    data: Path
    nas: Path  # the NAS's share (published kernels under aoeboot/)
    kver: str  # the kernel installed first
    install_log: str
    kernel_install_log: str


def install_box(
    work: Path,
    kernel: str = debtree.SUITE,
    prepare: Callable[[Path], None] | None = None,
    macs: Sequence[str] = (MAC,),
    install_args: Sequence[str] = (),
    kernel_install_env: Mapping[str, str] | None = None,
    with_initrd: bool = False,
    layout: disklayout.Layout = disklayout.WORKSTATION,
) -> Box:
    """A user's installation: the system disk (with the data volume in fstab by UUID=), the
    aoeboot package in it, publishing to the NAS's share configured, install-entry from the
    installer's shell (`--iface` for each of `macs`), then the distribution's `kernel-install
    add` (after the grub model). `prepare(target)` runs before install-entry (extra files,
    hooks); `install_args` are more install-entry options; `kernel_install_env` and
    `with_initrd` (pass /boot/initrd.img-KVER, as Debian's zz-systemd-boot hook does) shape
    the kernel-install run. `layout`: the disk's (disklayout.SERVER: / on LVM, p3 its PV)."""
    nas = work / "nas"
    # the NAS's publishing directory, as its admin makes it: publish never makes a destination
    (nas / PurePosixPath(PUBLISH_DIR).relative_to(NAS_MOUNT)).mkdir(parents=True)
    disk = sysimage.system_image(
        work / "system.img", kernel=kernel, extra_fstab=datadisk.data_fstab_line(), layout=layout
    )
    data = datadisk.make_data_disk(work / "data.img")
    pyz = build_pyz(work / "aoeboot.pyz")
    with sysimage.mounted(disk, layout=layout) as target:
        package.install_aoeboot(target)  # the package, as dnf --installroot would put it
        make_generic(target)
        add_grub_model(target)
        mount_nas_share(target, nas)
        config = target / "etc/aoeboot/aoeboot.conf"
        config.write_text(f"[publish]\ndestination = {PUBLISH_DIR}\n")
        if prepare is not None:
            prepare(target)
        ifaces = [arg for mac in macs for arg in ("--iface", mac)]
        install_log = install_entry_from_installer(
            pyz, target, "--target", TARGET, *ifaces, *install_args
        )
        kver = sysimage.boot_kernels(target)[-1]
        with nas_bind(target, nas):
            initrd = [f"/boot/initrd.img-{kver}"] if with_initrd else []
            done = chroot.chroot_run(
                target,
                ["kernel-install", "-v", "add", kver, f"/boot/vmlinuz-{kver}", *initrd],
                env=kernel_install_env,
            )
    return Box(disk, data, nas, kver, install_log, done.stdout + done.stderr)


def fsck_data(image: Path) -> subprocess.CompletedProcess[str]:
    """e2fsck -n of the data volume's one partition (1 MiB in, as make_data_disk puts it)."""
    with loopdev.attached(image, read_only=True) as loop:
        return subprocess.run(["e2fsck", "-n", "-f", f"{loop}p1"], capture_output=True, text=True)


@dataclass(frozen=True)
class Boot:
    done: bool  # the probe ran to its end
    exit_code: int | None  # qemu's: 0 after a clean power-off
    console: str  # ttyS0: the kernel and systemd
    steps: dict[str, Step]  # what the probe reported (ttyS1)


def boot(
    box: Box,
    workdir: Path,
    *,
    entry: Entry | None = None,
    options: str = "",
    netboot: bool = False,
    nic: str = "virtio-net-pci",
    timeout: float = 900,
    lan: bool = False,
    root_argv: Callable[[str], Sequence[str]] | None = None,
    during: Callable[[Live], None] | None = None,
    firmware: str = "bios",
) -> Boot:
    """The NAS (vblade serving both disks, dnsmasq as `aoeboot nas-config` configures it, TFTP
    from the published directory) and the box: `entry`'s kernel and initramfs with `options`,
    or, with `netboot`, whatever iPXE finds in the NAS's boot script. `lan`, `root_argv`,
    `firmware`: as for running(). `during(live)` runs once the VM has started, before waiting
    for the probe. A box that stalled (GuestFroze) is powered on again, once."""

    def once() -> Boot:
        with running(
            box,
            workdir,
            entry=entry,
            options=options,
            netboot=netboot,
            nic=nic,
            lan=lan,
            root_argv=root_argv,
            firmware=firmware,
        ) as live:
            if during is not None:
                during(live)
            done = wait_for_probe(live.probe, live.vm, timeout, wire=live.wire)
            exit_code = live.vm.wait_exit(180)
        return live.result(done, exit_code)

    try:
        return once()
    except GuestFroze as froze:  # seen only under qemu (TCG): power it on again, once
        set_aside(workdir)
        warnings.warn(
            f"{froze}; powered on again (its consoles: {workdir}/froze-*.log)", stacklevel=2
        )
        return once()


def nas_config_argv(
    target: str, nas_iface: str, image: Path, *options: str, macs: Sequence[str] = (MAC,)
) -> list[str]:
    """The vblade command line as `aoeboot nas-config --format vblade` prints it, split as a
    shell would."""
    mac_options = [word for mac in macs for word in ("--mac", mac)]
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "aoeboot",
            "nas-config",
            *mac_options,
            "--target",
            target,
            "--format",
            "vblade",
            "--nas-iface",
            nas_iface,
            "--export",
            str(image),
            *options,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    commands = [line for line in out.splitlines() if not line.startswith("#")]
    assert len(commands) == 1, out
    return shlex.split(commands[0])


@dataclass(frozen=True)
class Exports:
    """How the NAS runs vblade: `root_argv(nas_iface)`, `data_argv(nas_iface)` the command
    lines of the system disk and the data volume (default: open to all, no -s); `volatile`:
    behind a page cache that a power cut loses (aoelab/files/nascache.c)."""

    root_argv: Callable[[str], Sequence[str]] | None = None
    data_argv: Callable[[str], Sequence[str]] | None = None
    volatile: bool = False


class Live:
    """The NAS and the box while it runs: the test stops and starts the NAS, takes the box's
    links down and up on the host side, and reads their counters."""

    def __init__(
        self,
        box: Box,
        ns: Namespace,
        nas_ports: Sequence[str],
        taps: Sequence[str],
        probe: Path,
        monitor: Path,
        exports: Exports,
    ) -> None:
        self.box, self.ns, self.taps = box, ns, tuple(taps)
        self.nas_ports = list(nas_ports)  # the NAS's interfaces that still work (own MACs)
        self.nas_iface = self.nas_ports[0]
        self.probe, self.monitor, self.exports = probe, monitor, exports
        self.vblades: dict[str, list[Vblade]] = {}
        self.vm: VM

    def start_nas(self) -> None:
        """vblade serving the system disk (e11.0) and the data volume (e11.1) on each port."""
        assert not self.vblades, "the NAS is already serving"
        how = self.exports
        for port in self.nas_ports:
            root = how.root_argv(port) if how.root_argv else None
            data = how.data_argv(port) if how.data_argv else None
            self.vblades[port] = [
                Vblade(self.ns, SHELF, 0, port, self.box.disk, argv=root, volatile=how.volatile),
                Vblade(self.ns, SHELF, 1, port, self.box.data, argv=data, volatile=how.volatile),
            ]

    def stop_nas(self) -> None:
        for vblade in [v for port in self.vblades.values() for v in port]:
            vblade.stop()
        self.vblades = {}

    def power_cut(self) -> None:
        """The NAS loses power: every export stops, losing what its cache held."""
        for vblade in [v for port in self.vblades.values() for v in port]:
            vblade.power_cut()
        self.vblades = {}

    def port_dies(self, port: str) -> None:
        """A port of the NAS dies for good: its exports stop, its link goes down, and it stays
        so when the NAS starts again."""
        for vblade in self.vblades.pop(port, []):
            vblade.power_cut()
        self.ns.run(["ip", "link", "set", "dev", port, "down"])
        self.nas_ports.remove(port)

    def set_link(self, tap: str, up: bool) -> None:
        """The box's link `tap`, on the host (NAS) side: as a cable pulled or a switch port."""
        self.ns.run(["ip", "link", "set", "dev", tap, "up" if up else "down"])

    def set_carrier(self, nic: int, up: bool) -> None:
        """The carrier of the box's NIC number `nic` as the box sees it (qemu's set_link): off
        is a NIC with no cable."""
        qemumonitor.monitor_command(self.monitor, f"set_link n{nic} {'on' if up else 'off'}")

    def counters(self, tap: str) -> tuple[int, int]:
        """(bytes from the box, bytes to the box) on link `tap` (the tap's rx and tx)."""
        stats = f"/sys/class/net/{tap}/statistics"
        out = self.ns.run(["cat", f"{stats}/rx_bytes", f"{stats}/tx_bytes"]).stdout.split()
        return int(out[0]), int(out[1])

    def wire(self) -> tuple[int, int]:
        """Bytes from the box and to it on all its links so far."""
        both = [self.counters(tap) for tap in self.taps]
        return sum(sent for sent, _ in both), sum(taken for _, taken in both)

    def alive(self) -> bool:
        return self.vm.running

    def press_power_button(self) -> None:
        qemumonitor.monitor_command(self.monitor, "system_powerdown")

    def probed(self) -> str:
        return self.probe.read_text(errors="replace") if self.probe.exists() else ""

    def result(self, done: bool, exit_code: int | None) -> Boot:
        return Boot(done, exit_code, self.vm.text(), steps(self.probed()))


@contextlib.contextmanager
def running(
    box: Box,
    workdir: Path,
    *,
    entry: Entry | None = None,
    options: str = "",
    netboot: bool = False,
    nic: str = "virtio-net-pci",
    macs: Sequence[str] = (MAC,),
    lan: bool = False,
    root_argv: Callable[[str], Sequence[str]] | None = None,
    firmware: str = "bios",
    exports: Exports | None = None,
    nas_ports: int = 1,
) -> Iterator[Live]:
    """The NAS and the box, started; everything stops when the block ends. One NIC per MAC in
    `macs`, each on its own tap (tap0, tap1, ...); with more than one, or with `lan`, the taps
    and the NAS are ports of one bridge br0 in the NAS's namespace (one network, several paths;
    other machines can join it through veth pairs). The NAS's address is NAS_MAC either way.
    `root_argv(nas_iface)` is the vblade command line of the system disk (default: open to all);
    `exports`, all of how the NAS runs vblade (aoelab.installed.Exports), instead.
    `firmware` "uefi": OVMF, whose own PXE fetches iPXE (snponly.efi, put in the TFTP root
    here) from the NAS. With `nas_ports` 2 the NAS has a second port on the bridge (nas1, whose
    address is NAS_MAC2), serving the same disks (with -s: each vblade's volatile cache is its
    own)."""
    from aoelab.dnsmasq import Dnsmasq

    workdir.mkdir(exist_ok=True)
    fragment = subprocess.run(
        [
            sys.executable,
            "-m",
            "aoeboot",
            "nas-config",
            "--mac",
            macs[0],
            "--target",
            TARGET,
            "--format",
            "dnsmasq",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    probe = workdir / "probe.log"
    monitor = workdir / "monitor.sock"
    if netboot:
        how: dict[str, Any] = {
            "netboot": True,
            "firmware": firmware,
            "option_rom": firmware == "bios",
        }
        if firmware == "uefi":
            shutil.copy(SNPONLY, box.nas / "aoeboot")
    else:
        assert entry is not None, "a direct boot needs an entry"
        how = {"kernel": entry.linux, "initrd": entry.initrd, "append": f"{CONSOLE} {options}"}
    taps = [f"tap{i}" for i in range(len(macs))]
    extra = list(vm_extra(probe, box.nas)) + ["-monitor", f"unix:{monitor},server=on,wait=off"]
    extra += suspend.QEMU_ARGS  # S3, as a living-room box has it
    for i, mac in enumerate(macs[1:], start=1):
        extra += [
            "-netdev",
            f"tap,id=n{i},ifname={taps[i]},script=no,downscript=no",
            "-device",
            f"{nic},netdev=n{i},mac={mac}",
        ]
    with Namespace("aoesys") as ns:
        for tap in taps:
            ns.add_tap(tap)
        nas_iface = taps[0]
        if len(taps) > 1 or lan or nas_ports > 1:
            nas_iface = "br0"
            ns.add_bridge(nas_iface, NAS_MAC, taps)
        else:  # the NAS has one address, whichever way the box is wired to it
            ns.run(["ip", "link", "set", "dev", nas_iface, "address", NAS_MAC])
        ports = [nas_iface]
        if nas_ports > 1:
            assert nas_ports == 2, "the lab's NAS has at most two ports"
            ns.run(
                [
                    "ip",
                    "link",
                    "add",
                    "nas1",
                    "address",
                    NAS_MAC2,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    "nas1-br",
                ]
            )
            ns.run(["ip", "link", "set", "nas1-br", "master", nas_iface])
            for end in ("nas1", "nas1-br"):
                ns.link_up(end)
            ports.append("nas1")
        live = Live(box, ns, ports, taps, probe, monitor, exports or Exports(root_argv=root_argv))
        live.start_nas()
        try:
            with Dnsmasq(ns, nas_iface, box.nas / "aoeboot", fragment, workdir):
                live.vm = VM(
                    ns,
                    workdir / "console.log",
                    mac=macs[0],
                    memory=1024,
                    nic=nic,
                    extra=extra,
                    **how,
                )
                with live.vm:
                    yield live
        finally:
            live.stop_nas()
