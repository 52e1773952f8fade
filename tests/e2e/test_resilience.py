"""The box rides out its NAS going away and a link going down, under a user's load, in one boot.

The real installed system (as tests/e2e/test_installed_system.py installs it), with two NICs
on the NAS's network and `install-entry --iface` naming both, boots from AoE with what
install-entry sets up by default. The NAS serves the disks from two ports (two server MACs,
one vblade per port and disk), both recorded with `install-entry --server`. Inside,
aoelab-resilience writes one record a second to the root (btrfs) and the data volume (ext4),
each fsync'ed, and runs a soak: parallel writers and readers verified by checksum, and a
build-like load. Meanwhile, from the host:

0. The second NIC has no cable (no carrier) from power-on: the disk and root come as fast as
   with one NIC; the cable goes in once root is mounted, and the driver finds the path.
1. Two paths: one link is taken down on the host side mid-soak; records and the soak go on over
   the other; once it is back, the box sends over it again (the driver finds it again with its
   own discovery broadcast, at most 60 s later).
1b. One of the NAS's ports dies for good mid-write: the box goes on over the other. That needs
   a non-zero aoe_deadsecs (with 0 the driver resends to the dead port for ever), so
   install-entry sets one that never fails the disk; the rest of the run has one port.
2. The NAS (vblade) is stopped for 200 s, longer than the driver's default aoe_deadsecs (180 s,
   which lost every later write), then started: the records go on.
   aoeboot-watch says on the console, within a minute, that the NAS is silent, and that it
   answers again.
3. The NAS loses power three times at random moments, under a second soak, and is back 5 s
   later each time. vblade runs as `aoeboot nas-config` prints it (-s), behind a page cache that
   the cut loses (aoelab/files/nascache.c): what -s did not put on the NAS's disk is gone.
4. The NAS goes away again and the power button is pressed: the box does not power off
   without the NAS, and powers off cleanly once it is back.

Afterwards every record the box reported as synced is on both disks, in order, intact; every
file system is clean; the console shows no I/O error and no oops.
"""

from __future__ import annotations

import contextlib
import functools
import json
import random
import re
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from aoeboot.hostopts import PORTS_DEADSECS
from aoelab import fsck, installed, resilience, sysimage
from aoelab.vm import printk_time
from tests.helpers import require_programs, require_root

pytestmark = [pytest.mark.vm, pytest.mark.dracut]

OUTAGE = 200  # seconds: longer than the driver's default aoe_deadsecs (180)
SOAK = 60  # seconds of parallel checksummed I/O and a build-like load
BOOT_TIMEOUT = 900  # TCG on two shared cores
CUTS = 3  # NAS power cuts
CUT_SOAK = 40  # seconds of the soak the cuts land in
LINK_DOWN_RECORDS = 8  # records the box must write while one link is down
PORT_RECORDS = 10  # records the box must write once a NAS port died
PORT_GAP = 30  # seconds: the longest wait for a synced record when a port dies (the driver
# leaves a server that stops answering after 10 s)
BOTH_LINKS_TRAFFIC = 256 << 10  # bytes the box sends on the link once it is back
ROOT_MOUNTED = r"BTRFS info \(device etherd/e11\.0p\d+\): first mount"
# systemd's status lines once the poweroff is under way
SHUTTING_DOWN = re.compile(r"Stopping|Stopped|Deactivated|Unmounting|Power-Off")

# the second NIC's cable goes in once root is mounted: the driver finds that path by itself
# (aoeboot-watch's questions, or its own discovery every 60 s) before anything else runs
SECOND_PATH = (
    "d='/sys/block/etherd!e11.0'; i=0; until grep -q , $d/netif || [ $i -ge 180 ];"
    ' do sleep 1; i=$((i+1)); done; echo "$(cat $d/netif) after $i s";'
    " grep -q , $d/netif"
)
PROBE = {
    "second-path": ["sh", "-c", SECOND_PATH],
    "deadsecs": ["cat", "/sys/module/aoe/parameters/aoe_deadsecs"],
    "discover": ["aoeboot", "discover", "--json"],
    "status": ["aoeboot", "status", "--json"],
    "load": [resilience.PROGRAM, "/dev/ttyS1", "--soak", str(SOAK)],
}


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> installed.Box:
    require_root()
    require_programs("mmdebstrap", "qemu-system-x86_64", "vblade", "btrfs", "mkfs.ext4", "dnsmasq")
    work = tmp_path_factory.mktemp("resilience")
    return installed.install_box(
        work,
        prepare=lambda target: resilience.install(target, PROBE),
        macs=(installed.MAC, installed.MAC2),
        install_args=("--server", installed.NAS_MAC, "--server", installed.NAS_MAC2),
    )


def exports(box: installed.Box) -> installed.Exports:
    """vblade as `aoeboot nas-config` prints it for both of the box's NICs, behind a NAS page
    cache that a power cut loses."""
    macs = (installed.MAC, installed.MAC2)
    return installed.Exports(
        root_argv=lambda iface: installed.nas_config_argv(
            installed.TARGET, iface, box.disk, macs=macs
        ),
        data_argv=lambda iface: installed.nas_config_argv(
            f"e{installed.SHELF}.1", iface, box.data, macs=macs
        ),
        volatile=True,
    )


def test_the_box_rides_out_its_nas_going_away_and_a_link_going_down(box, tmp_path):
    with sysimage.mounted(box.disk, read_only=True) as target:
        entry = installed.read_entry(target, box.kver, tmp_path)
    assert f"rd.aoe.iface={installed.MAC},{installed.MAC2}" in entry.options.split()
    # as install-entry sets it up for a NAS with two ports
    assert f"rd.aoe.deadsecs={PORTS_DEADSECS}" in entry.options.split(), entry.options
    seed = random.randrange(1 << 32)
    print(f"power cuts: random.Random({seed})")
    with _booted(box, tmp_path / "boot", entry) as (live, events, no_cable):
        try:
            links = _two_paths(live, events, live.alive)
            soak = events.wait("soak", SOAK * 10)[0]
            port_gap = _a_nas_port_dies(live, events)
            nas_back, outage = _outage(live, events)
            cuts, cut_soak = resilience.power_cuts(
                live, events, CUTS, CUT_SOAK, random.Random(seed)
            )
            powered_off = _poweroff_while_the_nas_is_away(live, events)
        finally:
            events.close()
        exit_code = live.vm.wait_exit(300)
        result = live.result(True, exit_code)

    steps = result.steps
    print(
        "second NIC without carrier: from aoe loaded to the disk "
        f"{no_cable['disk']:.2f} s, to root mounted {no_cable['root']:.2f} s"
    )
    print(f"links (bytes from the box, to the box): {links}")
    print(f"a NAS port died: the longest wait between synced records {port_gap:.2f} s")
    assert port_gap <= PORT_GAP, port_gap
    print(
        f"soak: {' '.join(soak.words)}; NAS back -> first synced record: {nas_back:.2f} s; "
        f"poweroff: {powered_off}"
    )
    print(f"power cuts: {cuts}; soak across them: {' '.join(cut_soak.words)}")
    # a NIC with no cable holds nothing up: root within seconds of the driver (it was 50 s
    # when aoeboot-up waited 30 s for every carrier in an initqueue job)
    assert no_cable["root"] <= 10, no_cable
    print(f"second NIC's cable in at root mounted -> second path: {steps['second-path'].out}")
    assert steps["second-path"].rc == 0, steps["second-path"].out
    # what the box said about itself before the load started
    assert steps["deadsecs"].out.strip() == str(PORTS_DEADSECS), steps["deadsecs"].out
    status = json.loads(steps["status"].out)
    checks = {(c["name"], c["level"]): c["message"] for c in status["checks"]}
    assert ("deadsecs", "OK") in checks, status["checks"]
    assert "over 4 paths" in checks[("target", "OK")], checks  # 2 NICs, 2 NAS ports
    disks = {d["target"]: d for d in json.loads(steps["discover"].out)}
    assert len({p["interface"] for p in disks[f"e{installed.SHELF}.0"]["paths"]}) == 2, disks

    # the soak: no error, every checksum verified, builds done
    assert soak.get("errors") == "0" and int(soak.get("ok")) > 0, soak
    assert int(soak.get("builds")) > 0, soak
    assert len(cuts) == CUTS and cut_soak.get("errors") == "0", (cuts, cut_soak)
    # clean power-off, clean file systems, nothing bad on the console
    assert exit_code == 0, result.console[-3000:]
    # tasks blocked over 120 s while the NAS was away get the kernel's hung-task report: that
    # is the wait asked for, not a fault
    # aoeboot-watch said the NAS went silent within a minute, on the console, and that it came
    # back; it needs nothing from the disk to say so (the box's clock: printk's and the records')
    silent = printk_time(r"aoeboot: the NAS is silent: no answer for e11\.0", result.console)
    again = printk_time(r"aoeboot: the NAS answers for e11\.0 again", result.console)
    print(
        f"watcher: outage {outage[0]:.1f}-{outage[1]:.1f} s, silent said at {silent}, "
        f"back said at {again} (box's clock)"
    )
    assert silent is not None and outage[0] < silent <= outage[0] + 60, result.console[-3000:]
    assert again is not None and again > silent, result.console[-3000:]
    console = resilience.console_findings(result.console, [outage])
    print(f"blocked over 120 s in the outage, said the kernel: {console.waited_for_the_nas}")
    assert console.bad == []
    for where, check in fsck.fsck(box.disk).items():
        assert check.clean, f"{where}: {check.output[-2000:]}"
    data = installed.fsck_data(box.data)
    assert data.returncode == 0, data.stdout
    # every record reported synced is on both disks, in order, intact
    reported = events.last_record()
    for where, records in resilience.records_on_disks(box).items():
        assert records.damaged == [] and records.contiguous, (where, records)
        assert reported <= len(records.numbers) <= reported + 1, (where, reported, records)


@contextlib.contextmanager
def _booted(
    box: installed.Box, workdir: Path, entry: installed.Entry
) -> Iterator[tuple[installed.Live, resilience.Events, dict[str, float]]]:
    """The box powered on with its second NIC's cable out, up to the load under way. A box that
    stalled on the way (GuestFroze: seen under TCG right after switch-root) is powered on again,
    once, as installed.boot does."""
    for attempt in (1, 2):
        with contextlib.ExitStack() as stack:
            live = stack.enter_context(
                installed.running(
                    box,
                    workdir,
                    entry=entry,
                    options=entry.options,
                    macs=(installed.MAC, installed.MAC2),
                    exports=exports(box),
                    nas_ports=2,
                )
            )
            watch = installed.StallWatch(live.vm, (live.probe, live.vm.console), live.wire)
            try:
                live.set_carrier(1, up=False)
                mounted = live.vm.wait_for(ROOT_MOUNTED, BOOT_TIMEOUT, watch=watch.check)
                assert mounted, live.vm.text()[-3000:]
                no_cable = _second_nic_without_cable(live)
                events = resilience.Events(live.probe, live.alive)
                stack.callback(events.close)
                try:
                    events.wait("soak-start", BOOT_TIMEOUT, watch=watch.check)
                except AssertionError as error:
                    if isinstance(error, installed.GuestFroze):
                        raise
                    console = live.vm.text()[-3000:]
                    raise AssertionError(f"{error}; console ends: {console}") from error
            except installed.GuestFroze as froze:
                if attempt == 2:
                    raise
                warnings.warn(f"{froze}; powered on again ({workdir}/froze-*.log)", stacklevel=2)
                stack.close()
                installed.set_aside(workdir)
                continue
            yield live, events, no_cable
            return


def _second_nic_without_cable(live: installed.Live) -> dict[str, float]:
    """Seconds from the aoe driver loading (virtio's first NIC has carrier from its probe on)
    to the disk and to root mounted, by the box's clock; then the second NIC's cable goes in."""
    console = live.vm.text()
    loaded = printk_time(r"aoe: AoE v\d+ initialised", console)
    disk = printk_time(r"etherd/e11\.0: p1", console)
    root = printk_time(ROOT_MOUNTED, console)
    assert loaded is not None and disk is not None and root is not None, console[-3000:]
    live.set_carrier(1, up=True)
    return {"disk": disk - loaded, "root": root - loaded}


def _two_paths(live: installed.Live, events: resilience.Events, alive) -> dict[str, object]:
    """tap1 down mid-soak, the box goes on over tap0; up again, the box uses it again."""
    first, second = live.taps
    for tap in live.taps:  # both links carry the load before
        counters = functools.partial(live.counters, tap)
        assert resilience.wait_for_traffic(counters, BOTH_LINKS_TRAFFIC, 120, alive) is not None, (
            f"no traffic on {tap}"
        )
    links: dict[str, dict[str, tuple[int, int]]] = {
        "before": {tap: live.counters(tap) for tap in live.taps}
    }
    live.set_link(second, up=False)
    down = time.monotonic()
    links["at down"] = {tap: live.counters(tap) for tap in live.taps}
    records = events.wait("rec", 120, after=down, count=LINK_DOWN_RECORDS)
    links["down"] = {tap: live.counters(tap) for tap in live.taps}
    live.set_link(second, up=True)
    # while down, nothing crossed the link that was down; the other carried the load
    assert links["down"][second][0] == links["at down"][second][0], links
    assert links["down"][first][0] > links["at down"][first][0], links
    assert len(records) >= LINK_DOWN_RECORDS
    # the driver's discovery broadcast (every 60 s) finds the link again
    again = resilience.wait_for_traffic(
        lambda: live.counters(second), BOTH_LINKS_TRAFFIC, 150, alive
    )
    links["after"] = {tap: live.counters(tap) for tap in live.taps}
    assert again is not None, f"{second} unused since it came back: {links}"
    return {**links, "used again after (s)": round(again, 1)}


def _a_nas_port_dies(live: installed.Live, events: resilience.Events) -> float:
    """The NAS's second port dies for good while records are written; the box goes on over the
    first. Returns the longest wait between synced records from the death on."""
    last_before = events.named("rec")[-1]
    live.port_dies("nas1")
    died = time.monotonic()
    after = events.wait("rec", 180, after=died, count=PORT_RECORDS)
    hosts = [last_before.host, *(record.host for record in after)]
    return max(later - earlier for earlier, later in zip(hosts, hosts[1:]))


def _outage(live: installed.Live, events: resilience.Events) -> tuple[float, tuple[float, float]]:
    """The NAS away for OUTAGE s. Returns the seconds from its return to the first record, and
    the outage on the box's clock: from its last record before to its first after."""
    last_before = events.named("rec")[-1]
    live.stop_nas()
    stopped = time.monotonic()
    time.sleep(OUTAGE)  # the outage is the subject: its length is what is tested
    during = events.named("rec", after=stopped + 2)
    assert len(during) <= 1, during  # at most the one already on the wire
    assert live.vm.proc is not None and live.vm.running
    live.start_nas()
    back = time.monotonic()
    after = events.wait("rec", 120, after=back, count=5)  # the box goes on
    return after[0].host - back, (last_before.guest, after[0].guest)


def _poweroff_while_the_nas_is_away(live: installed.Live, events: resilience.Events) -> str:
    """The NAS away again; the power button; the box waits for the NAS, then powers off.

    Whether the shutdown is seen starting before the NAS is back is not up to the box: any
    program that needs a page not in memory (the soak dropped the caches) waits for the NAS,
    and logind may be one of them (seen in CI: no shutdown line in 60 s). It must not power off
    without the NAS, and must finish, losing nothing, once the NAS is back.
    """
    live.stop_nas()
    stopped = time.monotonic()
    last = events.named("rec")[-1].host
    while time.monotonic() - max(last, stopped) < 3:  # until the writer is stuck on the NAS
        time.sleep(0.2)
        last = events.named("rec")[-1].host
    seen = len(live.vm.text())
    pressed = time.monotonic()
    live.press_power_button()
    started = _shutdown_seen(live, seen, 15)
    if started is None:  # as a user would: nothing happened, press again
        live.press_power_button()
        started = _shutdown_seen(live, seen, 15)
    assert live.vm.wait_exit(10) is None, "powered off without the NAS"
    assert events.named("writer-stopped") == []
    back = time.monotonic()  # the box may go on as soon as the first export is up
    live.start_nas()
    events.wait("writer-stopped", 240, after=back)  # the record under way, synced; then stops
    if started is None:
        return f"requested {back - pressed:.0f} s before the NAS was back, went on once it was"
    return f"under way {back - started:.0f} s without the NAS, went on once it was back"


def _shutdown_seen(live: installed.Live, seen: int, seconds: float) -> float | None:
    """When systemd's console first shows the poweroff under way, within that many seconds."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if SHUTTING_DOWN.search(live.vm.text()[seen:]):
            return time.monotonic()
        time.sleep(0.2)
    return None
