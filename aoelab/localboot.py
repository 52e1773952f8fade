"""The system disk booted in qemu as a local virtio disk, with its own kernel and stock dracut
initramfs: up to multi-user.target, then the power button and a clean power-off."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from aoelab.disklayout import Layout, layout_of
from aoelab.netns import Namespace
from aoelab.qemumonitor import power_off
from aoelab.sysimage import boot_kernels, mounted
from aoelab.vm import VM

MULTI_USER = r"Reached target (?:\x1b\[[0-9;]*m)?multi-user\.target"  # status lines are colored
NIC_RENAMED = re.compile(r"\b(\w+): renamed from eth0\b")
LOCAL_BOOT_TIMEOUT = 300  # TCG on 2 loaded cores; a good boot takes well under half of it


@dataclass(frozen=True)
class LocalBoot:
    """What a boot of the system disk as a local virtio disk showed."""

    kernel: str  # the kernel version booted
    console: str  # the whole serial console
    multi_user: float | None  # wall seconds from qemu start to multi-user.target, if reached
    powered_off: bool  # the guest shut down by itself after the power button
    nic: str | None  # the virtio NIC's predictable name, from the console

    @property
    def ok(self) -> bool:
        return self.multi_user is not None and self.powered_off


def _boot_files(
    image: Path, kernel: str | None, workdir: Path, layout: Layout
) -> tuple[str, Path, Path]:
    """Copy vmlinuz and the stock initramfs of `kernel` (default: the newest) out of /boot."""
    with mounted(image, read_only=True, layout=layout) as target:
        kernel = kernel or boot_kernels(target)[-1]
        vmlinuz = workdir / f"vmlinuz-{kernel}"
        initrd = workdir / f"initrd.img-{kernel}"
        shutil.copyfile(target / f"boot/vmlinuz-{kernel}", vmlinuz)
        shutil.copyfile(target / f"boot/initrd.img-{kernel}", initrd)
    return kernel, vmlinuz, initrd


def boot_local(
    image: Path,
    workdir: Path,
    *,
    kernel: str | None = None,
    append: str = "",
    nic: bool = True,
    timeout: float = LOCAL_BOOT_TIMEOUT,
    layout: Layout | None = None,
) -> LocalBoot:
    """Boot the system disk `image` in qemu as a local virtio disk: its own kernel and stock
    dracut initramfs (copied out of /boot), the layout's root options (WORKSTATION: root=UUID=
    with rootflags=subvol=root; `layout`: the disk's own unless given). When
    multi-user.target is reached, press the (ACPI) power button and wait for a clean power-off.
    nic: a virtio NIC on a tap in the VM's own namespace (nothing answers there), so the
    hardware matches an AoE boot's."""
    layout = layout or layout_of(image)
    kernel, vmlinuz, initrd = _boot_files(image, kernel, workdir, layout)
    monitor = workdir / "monitor.sock"
    cmdline = f"{layout.cmdline} systemd.show_status=1 {append}".strip()
    with Namespace("aoelocal") as ns:
        if nic:
            ns.add_tap("tap0")
        vm = VM(
            ns,
            workdir / "console.log",
            kernel=vmlinuz,
            initrd=initrd,
            append=cmdline,
            tap="tap0" if nic else None,
            disk=image,
            memory=1024,
            extra=["-monitor", f"unix:{monitor},server=on,wait=off"],
        )
        with vm:
            reached = vm.wait_for(MULTI_USER, timeout)
            multi_user = vm.elapsed() if reached else None
            powered_off = reached is not None and power_off(vm, monitor)
    console = vm.text()
    renamed = NIC_RENAMED.search(console)
    return LocalBoot(
        kernel, console, multi_user, powered_off, renamed.group(1) if renamed else None
    )
