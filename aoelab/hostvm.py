"""A VM whose root file system is this machine's own, read-only over 9p (virtfs), with one
script as its init: it runs aoeboot under the Debian kernel, where the real `aoe` driver
loads, against the test's NAS on tap0. Output comes back on the serial console."""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path

from aoelab import dracutdir
from aoelab.netns import Namespace
from aoelab.vm import VM

REPO = Path(__file__).resolve().parent.parent
MOUNT_TAG = "hostroot"
DONE = "HOSTVM-DONE"

# PID 1 in the guest. The host's root is read-only: only /run (tmpfs) is written.
INIT = """#!/bin/sh
mount -t proc proc /proc 2> /dev/null; mount -t sysfs sys /sys 2> /dev/null
mount -t devtmpfs dev /dev 2> /dev/null; mount -t tmpfs tmpfs /run
for n in /sys/class/net/*; do ip link set "${{n##*/}}" up; done
cd {repo}
{steps}
echo "{done}" > /dev/console
echo o > /proc/sysrq-trigger
sleep 30
"""
STEP = """{argv} > /run/out 2> /run/err; rc=$?
echo "HOSTVM-STEP {name} rc=$rc out=$(tr -d '\\n' < /run/out) err=$(tr -d '\\n' < /run/err)" \\
    > /dev/console
"""


def initramfs(out: Path, kver: str, workdir: Path) -> Path:
    """A shell initramfs that mounts root=virtfs:hostroot."""
    return dracutdir.build(out, kver, workdir, systemd=False, extra=["-a", "virtfs"])


def init_script(path: Path, steps: dict[str, Sequence[str]]) -> Path:
    """Write the guest's init: each step is an argv run with the repo as working directory."""
    body = "".join(
        STEP.format(name=name, argv=" ".join(_quote(a) for a in argv))
        for name, argv in steps.items()
    )
    path.write_text(INIT.format(repo=_quote(str(REPO)), steps=body, done=DONE))
    path.chmod(0o755)
    return path


def aoeboot_argv(*args: str) -> Sequence[str]:
    return [sys.executable, "-m", "aoeboot", *args]


def _quote(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_./:=,+-]+", text):
        raise ValueError(f"not a plain word for the guest's init: {text!r}")
    return text


def vm(
    ns: Namespace,
    console: Path,
    kernel: Path,
    initrd: Path,
    init: Path,
    second_tap: str | None = None,
) -> VM:
    """eth0 on tap0; with `second_tap`, eth1 on that tap (both in `ns`)."""
    extra = ["-virtfs", f"local,path=/,mount_tag={MOUNT_TAG},security_model=none,readonly=on"]
    if second_tap:
        extra += [
            "-netdev",
            f"tap,id=n1,ifname={second_tap},script=no,downscript=no",
            "-device",
            "virtio-net-pci,netdev=n1,mac=52:54:00:12:34:57",
        ]
    return VM(
        ns,
        console,
        kernel=kernel,
        initrd=initrd,
        append=f"root=virtfs:{MOUNT_TAG} rootflags=ro init={init} net.ifnames=0",
        extra=extra,
    )


def steps(console: str) -> dict[str, dict[str, str]]:
    """What each step printed: {name: {"rc": ..., "out": ..., "err": ...}}."""
    found = {}
    for match in re.finditer(r"^HOSTVM-STEP (\S+) rc=(\d+) out=(.*?) err=(.*)$", console, re.M):
        found[match.group(1)] = {"rc": match.group(2), "out": match.group(3), "err": match.group(4)}
    return found
