"""Discovery through the Linux aoe driver: load it, restrict its interfaces, trigger, wait, list.

Everything is read and written under `root` so tests can point it at a prepared tree.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from aoeboot import mac, paths
from aoeboot.errors import AoebootError
from aoeboot.fsutil import read_or_empty, under
from aoeboot.run import run
from aoeboot.target import Target

log = logging.getLogger(__name__)

IFLIST_PARAM = Path("/sys/module/aoe/parameters/aoe_iflist")
DEADSECS_PARAM = Path("/sys/module/aoe/parameters/aoe_deadsecs")
ETHERD = Path("/dev/etherd")
SYS_BLOCK = Path("/sys/block")
# The driver's per-disk debugfs file (aoeblk.c): for every server
# MAC answering for the disk, the local interfaces that reach it. sysfs has only one server MAC.
DEBUGFS = Path("/sys/kernel/debug/aoe")
_DEBUG_SERVER = re.compile(r"([0-9a-f]{12}):\d+:\d+:\d+")


@dataclass(frozen=True)
class Route:
    """One server MAC answering for a disk and the local interfaces that reach it: the paths."""

    server: str
    interfaces: tuple[str, ...]


@dataclass(frozen=True)
class DriverTarget:
    target: Target
    state: str  # "up" or "down", maybe with ",kickme" or ",closewait"
    size_bytes: int
    mac: str
    netif: str
    firmware_version: str
    payload: int | None
    partitions: tuple[Target, ...]
    routes: tuple[Route, ...] = ()  # every path: server MAC and the interfaces reaching it

    @property
    def is_up(self) -> bool:
        return self.state.split(",")[0] == "up"

    @property
    def paths(self) -> list[tuple[str, str]]:
        """(local interface, server MAC) for every path to the disk."""
        return [(i, r.server) for r in self.routes for i in r.interfaces]


def is_loaded(root: Path = Path("/")) -> bool:
    return under(root, "/sys/module/aoe").is_dir()


def available(kver: str, root: Path = Path("/")) -> bool:
    """Whether kernel `kver` under `root` has the aoe driver, as a module or built in."""
    modules = under(root, paths.MODULES) / kver
    for index in ("modules.dep", "modules.builtin"):
        try:
            if any(
                line.split(":")[0].rsplit("/", 1)[-1].startswith("aoe.ko")
                for line in (modules / index).read_text().splitlines()
            ):
                return True
        except OSError:
            continue
    return any(modules.glob("kernel/drivers/block/aoe/aoe.ko*"))


def load(interfaces: Sequence[str] = (), root: Path = Path("/")) -> None:
    """Load aoe if needed, restricted to `interfaces` (all interfaces when empty). A driver
    already loaded keeps every interface it has and gains `interfaces` (see `widen`)."""
    iflist = " ".join(interfaces)
    if not is_loaded(root):
        if root != Path("/"):
            raise AoebootError(f"aoe driver not loaded under {root}")
        proc = run(["modprobe", "aoe"] + ([f"aoe_iflist={iflist}"] if iflist else []), check=False)
        if proc.returncode != 0:
            raise AoebootError(
                f"aoe driver not available for kernel {_release()}",
                hint="install the kernel's modules, or use --userspace",
            )
        return
    widen(interfaces, root)


def widen(interfaces: Sequence[str], root: Path = Path("/")) -> None:
    """Let the loaded driver use `interfaces` too, never taking one away: on a box whose root
    is on AoE the disk may be reached only through the interfaces already listed, and the
    driver drops every frame from the others. An empty list already means every interface, and
    there is no writing it back: the driver takes a written "\\n" for a list that matches none."""
    current = read_or_empty(under(root, IFLIST_PARAM)).split()
    missing = [name for name in interfaces if name not in current]
    if current and missing:
        set_interfaces(current + missing, root)


def _release() -> str:
    import os

    return os.uname().release


def set_interfaces(interfaces: Sequence[str], root: Path = Path("/")) -> None:
    """Write the interface list: the module parameter if writable, else /dev/etherd/interfaces.
    Never empty (see `widen`)."""
    assert interfaces, "an empty list written to the driver matches no interface"
    text = " ".join(interfaces) + "\n"
    for path in (under(root, IFLIST_PARAM), under(root, ETHERD / "interfaces")):
        try:
            with open(path, "w") as handle:
                handle.write(text)
            return
        except OSError as err:
            log.debug("cannot write %s: %s", path, err)
    raise AoebootError(
        "cannot set the aoe interface list",
        hint=f"neither {IFLIST_PARAM} nor {ETHERD / 'interfaces'} is writable",
    )


def trigger(root: Path = Path("/")) -> None:
    """Ask the driver to broadcast Query Config now (it does by itself only every 60 s)."""
    path = under(root, ETHERD / "discover")
    try:
        with open(path, "w") as handle:
            handle.write("\n")
    except OSError as err:
        raise AoebootError(f"cannot trigger discovery via {path}: {err.strerror}") from None


def list_targets(root: Path = Path("/")) -> list[DriverTarget]:
    """Every etherd disk the driver knows: through udev (pyudev) on the running system, else
    read from root/sys/block/etherd!eX.Y (an installer's --root, a prepared tree in tests)."""
    found = _udev_targets() if root == Path("/") else None
    if found is None:
        found = _sysfs_targets(under(root, SYS_BLOCK), root)
    return sorted(found, key=lambda t: t.target)


def _udev_targets() -> list[DriverTarget] | None:
    try:
        import pyudev
    except ImportError:
        return None
    found = []
    for device in pyudev.Context().list_devices(subsystem="block", DEVTYPE="disk"):
        # sys_name reads etherd/e11.0 for the sysfs directory etherd!e11.0
        if not device.sys_name.startswith("etherd"):
            continue
        try:
            target = Target.parse(device.sys_name)
            partitions = [
                Target.parse(child.sys_name)
                for child in device.children
                if child.device_type == "partition"
            ]
        except AoebootError:
            continue
        found.append(
            _make_target(
                target,
                partitions,
                functools.partial(_udev_attr, device),
                _debug_text(Path("/"), target),
            )
        )
    return found


def _read_attr(device_dir: Path, name: str) -> str:
    return read_or_empty(device_dir / name)


def _udev_attr(device: Any, name: str) -> str:  # a pyudev.Device (pyudev has no types)
    try:
        value: str = device.attributes.asstring(name)
        return value.strip()
    except (KeyError, UnicodeDecodeError):
        return ""


def _sysfs_targets(block: Path, root: Path) -> list[DriverTarget]:
    found = []
    for entry in sorted(block.glob("etherd!e*")) if block.is_dir() else ():
        try:
            target = Target.parse(entry.name)
            partitions = [Target.parse(child.name) for child in entry.glob("etherd!e*p*")]
        except AoebootError:
            continue
        # _make_target reads every attribute at once, within this iteration
        found.append(
            _make_target(
                target, partitions, functools.partial(_read_attr, entry), _debug_text(root, target)
            )
        )
    return found


def _debug_text(root: Path, target: Target) -> str:
    """The driver's debugfs file for the disk; empty where debugfs is not mounted (or not
    readable: it is root's)."""
    return read_or_empty(under(root, DEBUGFS) / target.disk.name)


def _routes(debug: str, server: str, netif: str) -> tuple[Route, ...]:
    """Every server MAC and its interfaces from the debugfs text; else the one server sysfs
    names, reached through every interface its `netif` lists (comma-separated)."""
    routes: list[Route] = []
    current: str | None = None
    for line in debug.splitlines():
        found = _DEBUG_SERVER.fullmatch(line.strip())
        if found and not line.startswith("\t"):
            current = mac.from_hexraw(found.group(1)) or found.group(1)
            routes.append(Route(current, ()))
        elif current is not None and line.startswith("\t") and ":" not in line:
            names = tuple(n for n in line.strip().split(",") if n)
            routes[-1] = Route(current, names)
    if routes:
        return tuple(routes)
    names = tuple(n for n in netif.split(",") if n and n != "none")
    return (Route(server, names),) if server else ()


def _make_target(
    target: Target, partitions: list[Target], attr: Callable[[str], str], debug: str = ""
) -> DriverTarget:
    payload = attr("payload")
    size = attr("size")
    server = mac.from_hexraw(attr("mac")) or attr("mac")
    return DriverTarget(
        target=target,
        state=attr("state"),
        size_bytes=int(size) * 512 if size.isdigit() else 0,
        mac=server,
        netif=attr("netif"),
        firmware_version=attr("firmware-version"),
        payload=int(payload) if payload.isdigit() else None,
        partitions=tuple(sorted(partitions)),
        routes=_routes(debug, server, attr("netif")),
    )


def servers(disk: Target, root: Path = Path("/")) -> tuple[str, ...]:
    """The MAC of every server the driver uses for `disk`, in its order. A second server that
    answers for the same shelf.slot becomes one more of them (the driver then spreads I/O over
    all). Only the driver's debugfs file lists each; without debugfs, sysfs `mac` gives the
    first. Empty when the disk is not there."""
    first = mac.from_hexraw(read_or_empty(under(root, SYS_BLOCK) / disk.disk.sysfs_name / "mac"))
    routes = _routes(_debug_text(root, disk), first or "", "")
    return tuple(dict.fromkeys(route.server for route in routes))


def discover(
    interfaces: Sequence[str] = (),
    timeout: float = 5.0,
    root: Path = Path("/"),
    want: Target | None = None,
    progress: Callable[[float], None] | None = None,
    retrigger: float = 0.0,
) -> list[DriverTarget]:
    """Load, trigger and wait up to `timeout` s: for `want` if given, else for the first disk
    and then a short settle time for the others. Event-driven through udev when possible.
    With `retrigger`, discovery is triggered again every that many seconds while nothing has
    come (the driver itself broadcasts only at load and every 60 s: a NAS that boots, or a
    link that comes up, after the trigger would otherwise wait a minute)."""
    load(interfaces, root)
    monitor = _block_monitor() if root == Path("/") else None  # before the trigger: hear it all
    known = {t.target for t in list_targets(root)}
    trigger(root)
    deadline = time.monotonic() + timeout
    announced: set[str] = set()
    last_trigger = time.monotonic()

    def done() -> bool:
        nonlocal last_trigger
        if retrigger and time.monotonic() - last_trigger >= retrigger:
            trigger(root)
            last_trigger = time.monotonic()
        targets = list_targets(root)
        if want is not None:
            return any(t.target == want.disk for t in targets)
        return bool(targets)

    def ready() -> bool:
        # A disk's sysfs directory comes before its partition scan; the kernel announces the
        # disk (uevent add) only after the scan, so its partitions are all there by then.
        return {t.target.name for t in list_targets(root) if t.target not in known} <= announced

    _wait(done, deadline, monitor, announced, progress)
    if want is None and list_targets(root):
        settle = min(deadline, time.monotonic() + 0.3)
        _wait(lambda: False, settle, monitor, announced, None)  # let the others answer too
    if monitor is not None:
        _wait(ready, deadline, monitor, announced, None)
    return list_targets(root)


def _wait(
    done: Callable[[], bool],
    deadline: float,
    monitor: object | None,
    announced: set[str],
    progress: Callable[[float], None] | None,
) -> None:
    """Until done() or the deadline: sleep on block uevents (recording the disks announced),
    or poll sysfs without a monitor."""
    while not done():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        if progress:
            progress(left)
        if monitor is None:
            time.sleep(min(left, 0.1))
            continue
        device = monitor.poll(timeout=min(left, 1.0))  # type: ignore[attr-defined]
        if device is not None and device.action == "add" and device.device_type == "disk":
            try:
                announced.add(Target.parse(device.sys_name).name)
            except AoebootError:
                pass


def _block_monitor() -> Any:  # a pyudev.Monitor, or None (pyudev has no types)
    """A pyudev monitor of block uevents straight from the kernel (works without udevd)."""
    try:
        import pyudev

        monitor = pyudev.Monitor.from_netlink(pyudev.Context(), source="kernel")
        monitor.filter_by("block")
        monitor.start()
        return monitor
    except (ImportError, OSError) as err:
        log.debug("no udev monitor (%s); polling sysfs", err)
        return None
