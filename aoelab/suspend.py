"""Suspend to RAM and resume, on the real installed system: the box's side is a probe step
(STEP), the host's wakes it through qemu's monitor (`system_wakeup`) and times each resume to
the box's first synced write on its root disk.

qemu's PIIX4 power management offers S3 (QEMU_ARGS). Before each suspend the box drops its page
cache, so what it runs after resuming comes from the NAS.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

from aoelab import qemumonitor

QEMU_ARGS = ("-global", "PIIX4_PM.disable_s3=0")
MARK = "AOELAB-SUSPEND"
SUSPENDED = re.compile(r"VM status: paused \(suspended\)")


WANTED = "suspend-wanted"  # on the NAS share: this boot suspends (others do not)


def step(count: int, mac: str, share: str) -> list[str]:
    """The box's side, when the host asked for it (WANTED on the NAS share): hand the NIC of
    `mac` to NetworkManager as a fully managed device (a rename by hand leaves it 'external',
    which NM never takes down), unmount the share (virtio-9p does not survive S3; a NAS's NFS
    would), then `count` times: drop the caches, say so, `systemctl suspend`; once the kernel
    counts the resume, write and fsync a file on root and say so. Last: what NM did."""
    script = (
        f"[ -e {share}/{WANTED} ] || exit 0; s=/sys/power/suspend_stats;"
        f" nic=$(grep -l {mac} /sys/class/net/*/address | cut -d/ -f5);"
        " nmcli --wait 60 device connect $nic || exit 1; umount -l " + share + ";"
        f" for i in $(seq {count}); do failed=$(cat $s/fail);"
        f' sync; echo 3 > /proc/sys/vm/drop_caches; echo "{MARK} suspending $i" > /dev/ttyS1;'
        ' systemctl suspend || { echo "' + MARK + ' failed $i" > /dev/ttyS1; exit 1; };'
        ' until [ "$(cat $s/success)" -ge $i ]; do sleep 0.05;'
        ' [ "$(cat $s/fail)" = "$failed" ] || { echo "' + MARK + " failed $i:"
        ' $(cat $s/last_failed_step)" > /dev/ttyS1; exit 1; }; done;'
        " dd if=/dev/urandom of=/var/tmp/after-resume bs=4k count=1 conv=fsync status=none"
        f' && echo "{MARK} synced $i" > /dev/ttyS1; done;'
        " cat $s/success /sys/power/mem_sleep;"
        " journalctl -b -o cat -u NetworkManager | grep -e 'sleep' -e \"($nic)\" | tail -n 80;"
        + nm_script()
    )
    return ["sh", "-c", script]


# What NetworkManager may do to the NIC of $nic besides sleep, each followed by a synced write
# on root within 60 s: the root disk must hear the NAS again by itself.
NM_ACTIONS = {
    "networking-off-on": "nmcli networking off; sleep 2; nmcli networking on",
    "managed-no": "nmcli device set $nic managed no; sleep 2",
    "managed-yes": "nmcli device set $nic managed yes; sleep 2",
    "restart": "systemctl restart NetworkManager; sleep 2",
    "connection-up": 'nmcli --wait 60 connection up "$(nmcli -g GENERAL.CONNECTION device show'
    ' $nic)"',
    # the DHCP server's answers dropped (on the box: the lab's NAS serves root too) until the
    # lease (2 min in the lab) runs out and NM drops the address; rc 0 once it has
    "lease-runs-out": "tc qdisc add dev $nic clsact && tc filter add dev $nic ingress protocol ip"
    " flower ip_proto udp dst_port 68 action drop && i=0 &&"
    " while ip -4 -o addr show dev $nic | grep -q inet && [ $i -lt 400 ];"
    " do sleep 0.5; i=$((i+1)); done;"
    " ! ip -4 -o addr show dev $nic | grep -q inet; gone=$?;"
    " tc qdisc del dev $nic clsact; [ $gone = 0 ]",
}
NM_MARK = "AOELAB-NM"
REBOOT = "/run/aoelab-reboot"  # the probe's end reboots the box (with NM up) if this exists


def nm_script() -> str:
    """Each of NM_ACTIONS, then a synced write on root; "AOELAB-NM NAME ok rc=N" after it (N:
    the action's own exit status). Then the box reboots rather than powers off (REBOOT)."""
    return (
        "".join(
            f" {{ {action}; }} > /dev/null 2>&1; rc=$?; timeout 60 dd if=/dev/urandom"
            " of=/var/tmp/after-nm bs=4k count=1 conv=fsync status=none &&"
            f" echo {NM_MARK} {name} ok rc=$rc;"
            for name, action in NM_ACTIONS.items()
        )
        + f" touch {REBOOT};"
    )


def _wait_for(probe_log: Path, text: str, timeout: float, alive: Callable[[], bool]) -> float:
    """The host time `text` appeared in the probe log; AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = probe_log.read_text(errors="replace") if probe_log.exists() else ""
        if f"{MARK} failed" in log:
            raise AssertionError(f"the box could not suspend: {log[-2000:]}")
        if text in log:
            return time.monotonic()
        if not alive():
            break
        time.sleep(0.02)
    raise AssertionError(f"no '{text}' from the box within {timeout:.0f} s")


class ResumeHung(AssertionError):
    """Woken (qemu no longer shows it suspended, or was woken again for 300 s), the box said
    nothing more: under TCG with two vCPUs, 2 first boots of 8 here never came back from an S3
    resume, with no line on the console and no DHCP renewal, after the box had entered S3 with
    its file systems synced."""


def crashed(console: str) -> str | None:
    """The guest kernel's crash line (an Oops or a panic) after its last suspend entry, if any:
    under TCG two first boots' kernels took a stray single-step debug exception
    (exc_debug_kernel) in CPU hotplug, one taking CPU 1 down to enter S3, one bringing it back
    up on resume, and then crashed, on paths that run none of our code."""
    entry = console.rfind("PM: suspend entry")
    if entry < 0:
        return None
    found = re.search(r"^.*(Kernel panic|Oops:).*$", console[entry:], re.M)
    return found.group(0).strip() if found else None


def wake_each(
    monitor: Path, probe_log: Path, count: int, alive: Callable[[], bool], asleep: float = 2
) -> list[float]:
    """Wake the box `count` times, each `asleep` s after qemu shows it suspended; the seconds
    from each wake-up to the box's synced write after it."""
    took = []
    for i in range(1, count + 1):
        _wait_for(probe_log, f"{MARK} suspending {i}", 600, alive)
        deadline = time.monotonic() + 180
        while alive() and not SUSPENDED.search(qemumonitor.monitor_command(monitor, "info status")):
            if time.monotonic() > deadline:
                raise AssertionError(f"suspend {i}: the box never reached S3")
            time.sleep(0.2)
        if not alive():
            raise AssertionError(f"suspend {i}: qemu exited before the box reached S3")
        time.sleep(asleep)
        woke = time.monotonic()
        qemumonitor.monitor_command(monitor, "system_wakeup")
        # qemu (TCG) once kept a box suspended through its wake-up: asked again while it
        # still shows suspended, timed from the wake-up that took
        while True:
            try:
                took.append(_wait_for(probe_log, f"{MARK} synced {i}", 10, alive) - woke)
                break
            except AssertionError as silent:
                if not alive():  # qemu is gone: the caller reads its console for a crash
                    raise
                if time.monotonic() - woke > 300:
                    raise ResumeHung(f"suspend {i}: woken, never came back ({silent})") from None
                if SUSPENDED.search(qemumonitor.monitor_command(monitor, "info status")):
                    woke = time.monotonic()
                    qemumonitor.monitor_command(monitor, "system_wakeup")
    return took
