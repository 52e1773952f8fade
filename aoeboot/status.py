"""`aoeboot status`: will this box come back after a reboot? Every link of the chain, checked.

Each check says OK, WARN (something later breaks: a fallback kernel, the next kernel update, a
pending publish) or FAIL (the next boot would not reach root on AoE). The box is read under
`root`, /proc and /sys included, so the same code checks the running system, an installer's
/mnt/sysimage (whose /proc and /sys Anaconda bind-mounts) and a prepared tree in tests; the
NAS's files are read where aoeboot.conf's publish destination says.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

from aoeboot import (
    bls,
    bootfiles,
    driver,
    fstab,
    grubdefault,
    initramfs,
    mac,
    netif,
    nmconf,
    paths,
    rootdev,
    stack,
    wire,
)
from aoeboot import config as configuration
from aoeboot.cmdline import AOE_WANTED, Cmdline, aoe_options
from aoeboot.errors import AoebootError
from aoeboot.fsutil import read_or_empty, under
from aoeboot.hostopts import PORTS_DEADSECS, SERVERS_OPTION, deadsecs, stacked_root
from aoeboot.kver import newest
from aoeboot.target import Target

OK, WARN, FAIL = "OK", "WARN", "FAIL"
ABFT = "/sys/firmware/acpi/tables/aBFT"  # iPXE's AoE boot firmware table, as an ACPI table
FIX = "run `aoeboot install-entry`"


@dataclass(frozen=True)
class Check:
    name: str  # which link of the chain: config, driver, target, root, cmdline, entry, ...
    level: str  # OK, WARN or FAIL
    message: str
    hint: str = ""


@dataclass(frozen=True)
class Host:
    """What every check needs to know about the system under `root`."""

    root: Path
    config: configuration.Config
    target: Target
    kernels: list[str]  # installed, oldest first
    root_mount: Sequence[str]  # rootfstype=/rootflags= the system's fstab asks for
    # Where / is under LVM, LUKS or md: the stack as sysfs shows it (None: not seen), and the
    # root= and assembly options it needs (None: root= is the target itself)
    storage: stack.Stack | None = None
    stacked: tuple[str, tuple[str, ...]] | None = None
    # A NIC's Wake-on-LAN (netif.wake_on_lan); None where the kernel asked is not the root's
    wake_on_lan: Callable[[str], netif.WakeOnLan | None] | None = None

    @property
    def on_aoe(self) -> bool:
        """Is / mounted from AoE here (not an installer's target prepared elsewhere)?"""
        return self.storage is not None and self.storage.on_aoe

    @property
    def newest(self) -> str | None:
        return newest(self.kernels) if self.kernels else None

    def severity(self, kver: str | None) -> str:
        """A problem with the default (newest) kernel fails the next boot; with another, it
        only breaks a fallback."""
        return FAIL if kver is None or kver == self.newest else WARN


def check(
    root: Path = Path("/"),
    progress: Callable[[str], None] = lambda _: None,
    wake_on_lan: Callable[[str], netif.WakeOnLan | None] | None = None,
) -> list[Check]:
    """Run every check on the system under `root`. A NIC's Wake-on-LAN is asked of the running
    kernel only when `root` is /, unless `wake_on_lan` is given."""
    checks: list[Check] = []
    host = _host(root, checks)
    if host is None:
        return checks
    if wake_on_lan is None and Path(root) == Path("/"):
        wake_on_lan = netif.wake_on_lan
    host = replace(host, wake_on_lan=wake_on_lan)
    for step in (
        _firmware,
        _driver,
        _interfaces,
        _target,
        _frames,
        _servers,
        _deadsecs,
        _watch,
        _root_mount,
        _fstab,
        _cmdline,
        _entries,
        _grub_default,
        _initramfs,
        _installed,
        _networkmanager,
        _publish,
    ):
        progress(step.__name__.strip("_").replace("_", " "))
        checks += step(host)
    return checks


def next_boot_ok(checks: Sequence[Check]) -> bool:
    return all(c.level != FAIL for c in checks)


def to_json(checks: Sequence[Check]) -> str:
    return json.dumps(
        {"next_boot_ok": next_boot_ok(checks), "checks": [asdict(c) for c in checks]}, indent=2
    )


# ---- the checks, in the order the boot needs them ----


def _host(root: Path, checks: list[Check]) -> Host | None:
    try:
        config = configuration.load(root)
    except AoebootError as err:
        checks.append(Check("config", FAIL, str(err), "fix the file; `man aoeboot` lists the keys"))
        return None
    try:
        live = rootdev.root_stack(root, under(root, rootdev.MOUNTINFO))
        stacked = stacked_root(root, live)
    except AoebootError as err:
        checks.append(Check("root", FAIL, str(err), "aoeboot boots LVM, LUKS and md on AoE"))
        return None
    except OSError:
        live, stacked = None, None
    mounted = live.disks[0] if live is not None and live.on_aoe else None
    target = config.boot.target or mounted
    if target is None:
        checks.append(
            Check(
                "config",
                FAIL,
                f"no AoE boot target: {paths.CONFIG} names none and "
                "/ is not mounted from an AoE disk",
                FIX,
            )
        )
        return None
    if config.boot.target is None:
        checks.append(
            Check("config", WARN, f"{paths.CONFIG} names no target; / is on {target.device}", FIX)
        )
    else:
        checks.append(Check("config", OK, f"{paths.CONFIG}: boot target {target.name}"))
    try:
        root_mount = fstab.root_options(root)
    except AoebootError as err:
        checks.append(
            Check(
                "fstab",
                WARN,
                f"{err}: root is mounted with the kernel's defaults",
                "the installed system's fstab should mount /",
            )
        )
        root_mount = ()
    kernels, odd = bootfiles.module_dirs(root)
    if odd:
        checks.append(
            Check(
                "kernel",
                WARN,
                f"{paths.MODULES} holds {', '.join(map(repr, odd))}, "
                "which cannot be a kernel version: left out of every check",
                "rename or remove it; kernel versions have no blanks",
            )
        )
    return Host(root, config, target, kernels, root_mount, live, stacked)


def firmware(root: Path) -> str:
    """How the running system was booted, "UEFI" or "BIOS" (the kernel's /sys/firmware/efi)."""
    return "UEFI" if under(root, "/sys/firmware/efi").is_dir() else "BIOS"


def _firmware(host: Host) -> list[Check]:
    name = firmware(host.root)
    message = f"booted with {name}"
    if name == "UEFI":
        bits = read_or_empty(under(host.root, "/sys/firmware/efi/fw_platform_size")).strip()
        message += f" ({bits}-bit)" if bits else ""
    if under(host.root, ABFT).is_file():
        message += "; iPXE attached the AoE disk and left its aBFT (root=aoe:abft works)"
    checks = [Check("firmware", OK, message)]
    destination = host.config.publish.destination or ""
    if destination and not destination.startswith("ssh://"):
        checks += _ipxe_images(name, Path(destination))
    return checks


def _ipxe_images(name: str, tftp: Path) -> list[Check]:
    """The NAS's TFTP root (taken to be the publish destination, where the script's default
    path is relative to) should hold iPXE for this firmware; tell only when it holds iPXE for
    the other one, the sign that it is the TFTP root indeed."""
    from aoeboot.pxearch import Images

    default = Images()
    names = {
        "BIOS": {default.bios, "undionly.kkpxe", "ipxe.pxe"},
        "UEFI": {default.efi_x86_64, "ipxe.efi"},
    }
    other = "BIOS" if name == "UEFI" else "UEFI"
    has = {fw: sorted(n for n in files if (tftp / n).is_file()) for fw, files in names.items()}
    if has[other] and not has[name]:
        option = "--efi-image" if name == "UEFI" else "--bios-image"
        return [
            Check(
                "firmware",
                WARN,
                f"{tftp} holds iPXE for {other} ({', '.join(has[other])}) "
                f"but none for {name} ({' or '.join(sorted(names[name]))}): this box's PXE "
                "firmware would get no iPXE",
                f"copy it there from the ipxe package; `aoeboot nas-config {option}` names it",
            )
        ]
    return []


def _driver(host: Host) -> list[Check]:
    checks = []
    missing_hint = "install the kernel's extra modules (Fedora: kernel-modules-extra)"
    if host.newest is None:
        checks.append(
            Check("driver", FAIL, "no kernel installed under /lib/modules", "install a kernel")
        )
    elif driver.available(host.newest, host.root):
        checks.append(
            Check("driver", OK, f"aoe driver present for the newest kernel {host.newest}")
        )
    else:
        checks.append(
            Check(
                "driver", FAIL, f"the newest kernel {host.newest} has no aoe driver", missing_hint
            )
        )
    running = read_or_empty(under(host.root, "/proc/sys/kernel/osrelease"))
    if driver.is_loaded(host.root):
        checks.append(Check("driver", OK, f"aoe driver loaded in the running kernel {running}"))
    elif running and running != host.newest and not driver.available(running, host.root):
        checks.append(
            Check("driver", WARN, f"the running kernel {running} has no aoe driver", missing_hint)
        )
    return checks


def _interfaces(host: Host) -> list[Check]:
    """Interfaces named in the config must exist under those names on this system (a MAC
    matches whatever the interface is called)."""
    named = [i for i in host.config.boot.interfaces if not mac.is_mac(i)]
    if not named:
        allowed = " ".join(host.config.boot.interfaces) or "every interface"
        return [Check("interface", OK, f"AoE may use {allowed}")]
    present = {p.name for p in under(host.root, "/sys/class/net").glob("*")}
    missing = [name for name in named if name not in present]
    if not missing:
        return [Check("interface", OK, f"AoE may use {' '.join(host.config.boot.interfaces)}")]
    level = FAIL if len(missing) == len(host.config.boot.interfaces) else WARN
    have = ", ".join(sorted(present)) or "none"
    return [
        Check(
            "interface",
            level,
            f"{paths.CONFIG} allows AoE on {', '.join(missing)}, "
            f"which this system does not have (it has: {have})",
            "name the interface by its MAC address: `aoeboot install-entry --iface MAC`",
        )
    ]


def _target(host: Host) -> list[Check]:
    disk = host.target.disk
    if not driver.is_loaded(host.root):
        return [
            Check(
                "target",
                WARN,
                f"aoe driver not loaded: cannot see whether the NAS serves {disk.name}",
                "`aoeboot discover` loads it and looks",
            )
        ]
    found = {t.target: t for t in driver.list_targets(host.root)}
    seen = found.get(disk)
    if seen is None:
        others = ", ".join(t.name for t in found) or "none"
        return [
            Check(
                "target",
                FAIL,
                f"{disk.name} is not visible (targets seen: {others})",
                "is vblade serving it on the NAS? `aoeboot discover` looks again",
            )
        ]
    if not seen.is_up:
        return [
            Check(
                "target",
                FAIL,
                f"{disk.name} is {seen.state} (via {seen.netif or '?'})",
                "check the NAS and the link; `aoeboot discover` looks again",
            )
        ]
    if host.target.partition is not None and host.target not in seen.partitions:
        parts = ", ".join(p.name for p in seen.partitions) or "none"
        return [
            Check(
                "target",
                FAIL,
                f"{disk.name} has no partition {host.target.partition} (partitions: {parts})",
                "is it the right disk?",
            )
        ]
    size = f"{seen.size_bytes / 2**30:.1f} GiB"
    every = seen.paths
    if len(every) > 1:
        ways = ", ".join(f"{local} to {server}" for local, server in every)
        return [Check("target", OK, f"{disk.name} is up, {size}, over {len(every)} paths: {ways}")]
    return [Check("target", OK, f"{disk.name} is up, {size}, via {seen.netif} from {seen.mac}")]


def _frames(host: Host) -> list[Check]:
    """The data frame the driver chose for the root disk ("setting N byte data frames": the
    smallest over the NAS's advertised size and every interface), against what the box's
    NICs would carry: a smaller one means the NAS's side or a switch has the smaller MTU."""
    seen = (
        next((t for t in driver.list_targets(host.root) if t.target == host.target.disk), None)
        if driver.is_loaded(host.root)
        else None
    )
    if seen is None or not seen.payload:
        return []
    nics = sorted({local for local, _ in seen.paths} or set(seen.netif.split(",")) - {""})
    mtus = {nic: read_or_empty(under(host.root, netif.SYS_NET) / nic / "mtu") for nic in nics}
    carried = [wire.frame_sectors(int(mtu)) * wire.SECTOR for mtu in mtus.values() if mtu.isdigit()]
    message = f"{seen.payload} byte data frames for {host.target.disk.name}"
    if carried and min(carried) > seen.payload:
        shown = ", ".join(f"{nic} MTU {mtu}" for nic, mtu in mtus.items())
        return [
            Check(
                "frames",
                WARN,
                f"{message}, though {shown} would carry "
                f"{min(carried)}: the NAS's interface or a switch has the smaller MTU",
                "jumbo frames on the NAS, the switch and the box alike, then restart "
                "vblade and `echo > /dev/etherd/discover` (doc/GUIDE.md)",
            )
        ]
    return [Check("frames", OK, message)]


def _servers(host: Host) -> list[Check]:
    """Which servers answer for the disk, against those install-entry recorded: a second NAS
    exporting the same shelf.slot, or a spoofer, becomes one more server the driver spreads
    reads and writes over."""
    disk = host.target.disk.name
    seen = driver.servers(host.target.disk, host.root) if driver.is_loaded(host.root) else ()
    if not seen:
        return []  # the target check says why
    recorded = host.config.boot.servers
    if not recorded:
        return [
            Check(
                "server",
                OK,
                f"{disk} is served by {', '.join(seen)} (no server MACs "
                "recorded to compare with: `aoeboot install-entry` records them)",
            )
        ]
    unexpected = [server for server in seen if server not in recorded]
    if unexpected:
        return [
            Check(
                "server",
                WARN,
                f"{disk} is also answered by {', '.join(unexpected)}, "
                f"which {paths.CONFIG} does not record (recorded: {', '.join(recorded)}): "
                f"a second NAS exporting {disk}, or a spoofer, and the driver reads and "
                "writes through every server it hears",
                "find that MAC on the network; if the NAS really changed, "
                "`aoeboot install-entry --server MAC`",
            )
        ]
    silent = [server for server in recorded if server not in seen]
    return [
        Check(
            "server",
            OK,
            f"{disk} is served by {', '.join(seen)}, as recorded"
            + (f" ({', '.join(silent)} not heard)" if silent else ""),
        )
    ]


def _deadsecs(host: Host) -> list[Check]:
    """Whether the driver would give up on the root disk while the NAS is away (reboot, update):
    with aoe_deadsecs > 0 it fails every write after that long, the file system aborts, and
    the box never recovers when the NAS is back. 0 waits, like an NFS hard mount."""
    checks = []
    configured = host.config.boot.deadsecs
    if configured:
        checks.append(
            Check(
                "deadsecs",
                WARN,
                f"{paths.CONFIG} sets deadsecs = {configured}: "
                f"each boot gives up on the root disk after the NAS is away "
                f"{configured} s, and every later write is lost",
                "remove the key (or set 0) to wait for the NAS however long",
            )
        )
    if not driver.is_loaded(host.root) or not host.on_aoe:
        return checks  # not running from AoE (an installer's target): nothing in force yet
    text = read_or_empty(under(host.root, driver.DEADSECS_PARAM))
    if not text.isdigit():
        return checks + [
            Check(
                "deadsecs",
                WARN,
                f"cannot read {driver.DEADSECS_PARAM}: whether "
                "the root disk waits for the NAS is unknown",
            )
        ]
    seconds = int(text)
    ports = len(host.config.boot.servers)
    if seconds == 0 and ports > 1:
        return checks + [
            Check(
                "deadsecs",
                WARN,
                f"aoe_deadsecs=0 with {ports} NAS ports "
                "recorded: when one port dies, the root disk waits for it for "
                "ever instead of going on over another",
                "rebuild the initramfs with this aoeboot (`aoeboot "
                "install-entry`): it sets rd.aoe.deadsecs for more than one port",
            )
        ]
    if seconds in (0, PORTS_DEADSECS):
        return checks + [
            Check(
                "deadsecs",
                OK,
                f"aoe_deadsecs={seconds}: the root disk waits for "
                "the NAS however long it is away"
                + (", and leaves a NAS port that stops answering after 10 s" if seconds else ""),
            )
        ]
    hint = f"`echo 0 > {driver.DEADSECS_PARAM}` now" + (
        ""
        if configured
        else "; for the next boots rebuild the initramfs with this aoeboot "
        "(`aoeboot install-entry`): it makes 0 the default"
    )
    return checks + [
        Check(
            "deadsecs",
            WARN,
            f"aoe_deadsecs={seconds}: the aoe driver gives up "
            f"on the root disk when the NAS is away {seconds} s, and every "
            "later write is lost",
            hint,
        )
    ]


WATCH_STALE = 120  # seconds: a watch.json older than that is from a watcher that stopped


def _watch(host: Host) -> list[Check]:
    """aoeboot-watch: enabled, and on the running box, what it last saw of the NAS."""
    if not bootfiles.watch_link(host.root).is_symlink():
        return [
            Check(
                "watch",
                WARN,
                f"{paths.WATCH_SERVICE} is not enabled: nothing keeps the "
                "root disk's NICs up, and nothing says when the NAS stops answering",
                f"systemctl enable --now {paths.WATCH_SERVICE}",
            )
        ]
    if not host.on_aoe:
        return [Check("watch", OK, f"{paths.WATCH_SERVICE} is enabled")]
    state_file = under(host.root, paths.WATCH_STATE)
    try:
        state = json.loads(read_or_empty(state_file) or "{}")
    except ValueError:
        state = {}
    checked = state.get("checked") if isinstance(state, dict) else None
    if not isinstance(checked, (int, float)) or time.time() - checked > WATCH_STALE:
        return [
            Check(
                "watch",
                WARN,
                f"{paths.WATCH_SERVICE} is not running (no fresh "
                f"{paths.WATCH_STATE}): nothing says when the NAS stops answering",
                f"systemctl start {paths.WATCH_SERVICE}; journalctl -u {paths.WATCH_SERVICE}",
            )
        ]
    if state.get("silent"):
        return [
            Check(
                "watch",
                FAIL,
                f"the NAS has not answered for {state.get('disk')} for "
                f"{state.get('quiet_seconds')} s: the box runs on what it has cached, and "
                "whatever needs the disk waits",
                "start the NAS's vblade for this disk (on the NAS: systemctl status vblade-*)",
            )
        ]
    restored = state.get("links_restored") or 0
    extra = f"; brought a NIC taken down back up {restored} time(s)" if restored else ""
    return [
        Check(
            "watch",
            OK,
            f"the NAS answers for {state.get('disk')} "
            f"({', '.join(state.get('answered_by') or [])}), asked "
            f"{time.time() - checked:.0f} s ago{extra}",
        )
    ]


def _root_mount(host: Host) -> list[Check]:
    live = host.storage if host.on_aoe else None
    if live is not None:
        shown = live.describe() if live.layers else str(live.disks[0].device)
        if host.target in live.disks:
            return [Check("root", OK, f"/ is mounted from {shown}")]
        return [
            Check(
                "root",
                FAIL,
                f"/ is mounted from {shown}, but the boot target is {host.target.device}",
                f"set [boot] target in {paths.CONFIG}",
            )
        ]
    return [
        Check(
            "root",
            WARN,
            f"/ is not mounted from {host.target.device} (fine while "
            "preparing a system; the next boot mounts it)",
        )
    ]


def _fstab(host: Host) -> list[Check]:
    """Every device fstab names by UUID=/LABEL= (udev makes those links for AoE disks only with
    our rule; without it systemd waits 90 s for /boot, then enters emergency mode) or through
    device-mapper (/dev/mapper/...): the AoE disks under each, and whether they are up."""
    lines = [
        e for e in fstab.read(host.root) or [] if e.link or e.device.startswith("/dev/mapper/")
    ]
    linked = [e for e in lines if e.link]
    rule = any(
        under(host.root, d).joinpath(paths.UDEV_RULES.name).exists()
        for d in (paths.UDEV_RULES.parent, Path("/etc/udev/rules.d"))
    )
    if linked and not rule:
        return [
            Check(
                "fstab",
                FAIL,
                f"fstab mounts {', '.join(e.mount_point for e in linked)} "
                f"by {linked[0].device.split('=')[0]}=, but {paths.UDEV_RULES} is missing: "
                "udev makes no such links for AoE disks",
                "reinstall the aoeboot package",
            )
        ]
    disks = (
        {t.target: t for t in driver.list_targets(host.root)} if driver.is_loaded(host.root) else {}
    )
    return [_fstab_line(host, line, disks) for line in lines]


def _fstab_line(host: Host, line: fstab.Line, disks: dict[Target, driver.DriverTarget]) -> Check:
    path = under(host.root, str(line.link or line.device))
    level = FAIL if line.required else WARN
    if not path.exists():
        return Check(
            "fstab",
            level,
            f"{line.mount_point}: {line.link or line.device} does not exist (yet)",
            "`udevadm trigger`; is its disk there?",
        )
    device = Path(os.path.realpath(path)).name
    name = stack.block_name(str(line.link or line.device), host.root)
    layered = name is not None and not name.startswith("etherd!")
    found = stack.walk(name, host.root) if layered and name else None
    if found is not None and found.layers and found.disks:
        shown = found.describe()
        targets = found.disks
    else:
        shown = f"AoE disk {device}"
        try:
            targets = (Target.parse(device),) if device.startswith("e") else ()
        except AoebootError:
            targets = ()
    if not targets or not disks:
        return Check(
            "fstab", OK, f"{line.mount_point}: {line.device} is {shown if targets else device}"
        )
    for target in targets:
        seen = disks.get(target.disk)
        if seen is None or not seen.is_up:
            state = seen.state if seen else "not visible"
            which = f"{target.disk.name} " if found is not None and found.layers else ""
            return Check(
                "fstab",
                level,
                f"{line.mount_point}: {line.device} is {shown}, {which}{state}",
                "check the NAS",
            )
    via = ", ".join(sorted({str(disks[t.disk].netif) for t in targets}))
    return Check("fstab", OK, f"{line.mount_point}: {line.device} is {shown}, up via {via}")


def _expected_options(host: Host) -> Sequence[str]:
    boot = host.config.boot
    return aoe_options(
        host.target, boot.interfaces, boot.timeout, deadsecs(boot), host.root_mount, host.stacked
    )


def _root_problem(options: Cmdline, host: Host) -> str | None:
    """Why `options` would not boot root from the target (None: it would)."""
    value = options.get("root")
    if value is None:
        return "has no root="
    if host.stacked is not None:
        return _stacked_problem(options, value, host)
    try:
        if Target.parse(value) != host.target:
            return f"has root={value}, not {host.target.device}"
    except AoebootError:
        return f"has root={value}, not {host.target.device}"
    for wanted in host.root_mount:
        key, _, expected = wanted.partition("=")
        if options.get(key) != expected:
            return (
                f"has {key}={options.get(key) or '(none)'}, but fstab mounts / with "
                f"{expected}: switch-root would find the wrong tree"
            )
    return None


def _stacked_problem(options: Cmdline, value: str, host: Host) -> str | None:
    """Why `options` would not boot a root under LVM, LUKS or md on the target."""
    device, assembly = host.stacked or ("", ())
    if value != device and not _same_device(value, device, host.root):
        below = _below_root(value, host)
        if below:
            return f"has root={value}, which is {below}, not a file system"
        return f"has root={value}, but fstab mounts / from {device}"
    lacking = [option for option in assembly if not options.has(option)]
    if lacking:
        return f"lacks {' '.join(lacking)}: the initramfs would not assemble /"
    return None


def _below_root(value: str, host: Host) -> str | None:
    """What root=`value` names under the file system at / (a PV, a LUKS container)."""
    try:
        if Target.parse(value) == host.target:
            return f"the AoE disk under / ({host.target.name})"
    except AoebootError:
        pass
    name = _block_name(value, host.root)
    if host.storage is not None and name is not None and host.storage.below(name):
        return f"under / ({host.storage.describe()})"
    return None


def _block_name(spec: str, root: Path) -> str | None:
    """The block device root=`spec` names (a /dev path, UUID=, LABEL=...), where it is here."""
    link = fstab.Line(spec, "/", "auto", ()).link
    path = link or (spec if spec.startswith("/dev/") else None)
    return stack.block_name(path, root) if path else None


def _same_device(spec: str, other: str, root: Path) -> bool:
    """Do the two spellings name one device here (root=UUID=... for /dev/mapper/fedora-root)?"""
    name = _block_name(spec, root)
    return name is not None and name == _block_name(other, root)


def _cmdline(host: Host) -> list[Check]:
    path = under(host.root, paths.KERNEL_CMDLINE)
    if not path.exists():
        return [
            Check(
                "cmdline",
                FAIL,
                f"{paths.KERNEL_CMDLINE} is missing: every new boot entry "
                "would copy the running kernel's command line",
                FIX,
            )
        ]
    try:
        options = Cmdline.parse(path.read_text(), where=str(paths.KERNEL_CMDLINE))
    except (OSError, AoebootError) as err:
        return [Check("cmdline", FAIL, str(err), FIX)]
    problem = _root_problem(options, host)
    if problem:
        return [Check("cmdline", FAIL, f"{paths.KERNEL_CMDLINE} {problem}", FIX)]
    expected = _expected_options(host)
    if not all(map(options.has, expected)):
        return [
            Check(
                "cmdline",
                WARN,
                f"{paths.KERNEL_CMDLINE} lacks some of {' '.join(expected)} (from {paths.CONFIG})",
                FIX,
            )
        ]
    return [Check("cmdline", OK, f"{paths.KERNEL_CMDLINE}: {' '.join(expected)}")]


def _root_shown(host: Host) -> str:
    if host.stacked is None:
        return str(host.target.device)
    return f"{host.stacked[0]} on {host.target.name}"


def _boot_entries(host: Host) -> tuple[dict[Path, bls.BootEntry], list[Check]]:
    """The entries that can be read, and a check for each that cannot: the boot loader may
    skip it or stop at it, and --json must say so too."""
    found: dict[Path, bls.BootEntry] = {}
    unreadable: list[Check] = []
    for path in bootfiles.entry_files(host.root):
        try:
            found[path] = bls.BootEntry.read(path)
        except AoebootError as err:
            stem = path.stem.split("+")[0]
            kver = next((k for k in host.kernels if stem.endswith("-" + k)), None)
            level = host.severity(kver) if kver else WARN
            unreadable.append(Check("entry", level, str(err), FIX))
    return found, unreadable


def _entries(host: Host) -> list[Check]:
    entries, checks = _boot_entries(host)
    if not entries and not checks:
        if host.config.publish.destination:
            return [Check("entry", OK, "no local boot entries: the box netboots from the NAS")]
        return [Check("entry", FAIL, "no boot entries under /boot, /efi or /boot/efi", FIX)]
    for path, entry in entries.items():
        name = _shown(host, path)
        problem = _root_problem(entry.options, host)
        if problem:
            kver = bootfiles.entry_kver(path, entry, host.kernels)
            checks.append(Check("entry", host.severity(kver), f"{name} {problem}", FIX))
        else:
            checks.append(Check("entry", OK, f"{name} boots root from {_root_shown(host)}"))
    return checks


def _grub_default(host: Host) -> list[Check]:
    try:
        grub = grubdefault.current(host.root)
    except AoebootError as err:
        return [Check("grub", WARN, str(err), FIX)]
    if grub is None:
        return []
    expected = _expected_options(host)
    if bootfiles.carries(grub, expected):
        return [
            Check("grub", OK, f"GRUB_CMDLINE_LINUX in {paths.DEFAULT_GRUB} carries the AoE options")
        ]
    return [
        Check(
            "grub",
            WARN,
            f"GRUB_CMDLINE_LINUX in {paths.DEFAULT_GRUB} lacks "
            f"{' '.join(expected)}: grub2-mkconfig would rewrite every entry without them",
            FIX,
        )
    ]


def _initramfs(host: Host) -> list[Check]:
    checks = []
    for kver in reversed(host.kernels):  # newest first: the one that boots next
        found = initramfs.booted(kver, host.root)
        if not found:
            checks.append(
                Check("initramfs", host.severity(kver), f"kernel {kver} has no initramfs", FIX)
            )
        for image in found:
            checks += _image(host, kver, image)
    return checks + _rescue(host)


def _image(host: Host, kver: str, image: Path) -> list[Check]:
    """The initramfs `image` of `kver`, as an entry names it or at its usual name."""
    name = _shown(host, image)
    if not image.is_file():
        return [
            Check(
                "initramfs",
                host.severity(kver),
                f"{name}, which the entry of kernel {kver} boots, does not exist",
                FIX,
            )
        ]
    try:
        lacking = initramfs.missing(image)
    except AoebootError as err:
        return [Check("initramfs", host.severity(kver), str(err), FIX)]
    if host.stacked is not None:
        lacking += initramfs.missing_assembly(image, host.stacked[1])
    if lacking:
        return [
            Check(
                "initramfs",
                host.severity(kver),
                f"{name} lacks the {' and the '.join(lacking)}",
                FIX,
            )
        ]
    assembles = f" and assembles {host.stacked[0]}" if host.stacked is not None else ""
    checks = [Check("initramfs", OK, f"{name} has the aoe driver and our module{assembles}")]
    return checks + (_baked(host, image, kver) if kver == host.newest else [])


def _baked(host: Host, image: Path, kver: str) -> list[Check]:
    """The options the image carries itself: what boots when a boot loader tool rewrote the
    entry's options to root=UUID=... with no rd.aoe.*."""
    try:
        baked = initramfs.baked_options(image)
    except AoebootError as err:
        return [Check("initramfs", WARN, str(err), FIX)]
    name = _shown(host, image)
    rebuild = f"rebuild it: `dracut -f {name} {kver}`"
    if AOE_WANTED not in baked.options or _root_problem(baked, host) is not None:
        return [
            Check(
                "initramfs",
                WARN,
                f"{name} does not carry the AoE options itself: if a "
                "boot loader tool rewrites the entry's options, the next boot never brings "
                "AoE up",
                rebuild,
            )
        ]
    recorded = set(host.config.boot.servers)  # the config parser normalised them
    carried = {
        mac.normal(word) or word for word in (baked.get(SERVERS_OPTION) or "").split(",") if word
    }
    if carried != recorded:  # its AoE report would name the wrong servers as unexpected
        return [
            Check(
                "initramfs",
                WARN,
                f"{name} carries the AoE options itself, but the "
                f"servers it expects ({', '.join(sorted(carried)) or 'none'}) are not "
                f"those {paths.CONFIG} records ({', '.join(sorted(recorded)) or 'none'})",
                rebuild,
            )
        ]
    return [Check("initramfs", OK, f"{name} carries the AoE options itself")]


def _rescue(host: Host) -> list[Check]:
    checks = []
    for rescue in initramfs.rescue_images(host.root):
        try:
            lacking = initramfs.missing(rescue.image)
        except AoebootError as err:
            lacking = [str(err)]
        if lacking:
            checks.append(
                Check(
                    "rescue",
                    WARN,
                    f"{_shown(host, rescue.image)} lacks the "
                    f"{' and the '.join(lacking)}: the rescue entry cannot reach "
                    "root on AoE",
                    FIX,
                )
            )
        else:
            checks.append(Check("rescue", OK, f"{_shown(host, rescue.image)} has AoE"))
    return checks


def _installed(host: Host) -> list[Check]:
    """What keeps the next kernel update bootable: drop-in, plugin, dracut module."""
    checks = []
    dropin = under(host.root, paths.DRACUT_DROPIN)
    if "aoe" in read_or_empty(dropin):
        checks.append(Check("dracut", OK, f"{paths.DRACUT_DROPIN} adds the aoe module"))
    else:
        checks.append(
            Check(
                "dracut",
                WARN,
                f"{paths.DRACUT_DROPIN} is missing: each new kernel's "
                "initramfs is built twice (without AoE, then again)",
                FIX,
            )
        )
    if not under(host.root, paths.DRACUT_MODULE / "module-setup.sh").exists():
        checks.append(
            Check(
                "dracut",
                WARN,
                f"the dracut module {paths.DRACUT_MODULE} is not "
                "installed: new initramfs images cannot boot from AoE",
                "reinstall the aoeboot package",
            )
        )
    masked = under(host.root, "/etc/kernel/install.d") / paths.PLUGIN.name
    if masked.is_symlink() and str(masked.readlink()) == "/dev/null":
        checks.append(
            Check(
                "plugin",
                WARN,
                f"{_shown(host, masked)} masks the "
                "kernel-install plugin: kernel updates will not keep AoE",
                f"remove the symlink /etc/kernel/install.d/{paths.PLUGIN.name}",
            )
        )
    elif not under(host.root, paths.PLUGIN).exists() and not masked.exists():
        checks.append(
            Check(
                "plugin",
                WARN,
                f"the kernel-install plugin {paths.PLUGIN} is not "
                "installed: kernel updates will not keep AoE",
                "reinstall the aoeboot package",
            )
        )
    else:
        checks.append(Check("plugin", OK, "the kernel-install plugin is installed"))
    return checks


def _networkmanager(host: Host) -> list[Check]:
    """Where NetworkManager runs: its drop-in covers every NIC of the root disk, and what it can
    still do to them that no configuration prevents (doc/nm-findings.md)."""
    if not nmconf.installed(host.root):
        return []
    nics, _ = nmconf.aoe_nics(host.config.boot.interfaces, host.target, host.root)
    if not nics:
        return [
            Check(
                "nm",
                WARN,
                "cannot tell which NICs carry the root disk (no [boot] "
                f"interfaces with a MAC here, and the aoe driver shows none): whether "
                f"{paths.NM_DROPIN} covers them is unknown",
                "`aoeboot install-entry --iface IF` names them",
            )
        ]
    return [_nm_dropin(host, nics)] + _nm_suspend(host, nics) + [_nm_limits(host, nics)]


def _nm_dropin(host: Host, nics: Sequence[nmconf.Nic]) -> Check:
    path = under(host.root, paths.NM_DROPIN)
    shown = ", ".join(nic.shown for nic in nics)
    if not path.is_file():
        return Check(
            "nm",
            WARN,
            f"{paths.NM_DROPIN} is missing: NetworkManager may unmanage "
            f"{shown} for a udev NM_UNMANAGED rule (taking the link down), give it "
            "another drop-in's default MAC, or take it down at poweroff, and the root "
            "disk then waits for ever",
            FIX,
        )
    lacking = [nic for nic in nics if nic.mac not in nmconf.covered(read_or_empty(path))]
    if lacking:
        return Check(
            "nm",
            WARN,
            f"{paths.NM_DROPIN} does not cover "
            f"{', '.join(nic.shown for nic in lacking)}: NetworkManager may unmanage "
            "it for a udev rule (taking the link down) or give it another MAC",
            FIX,
        )
    # NetworkManager matches mac: against the permanent MAC only
    sys_net = under(host.root, netif.SYS_NET)
    moved = [
        nic for nic in nics if nic.name and netif.permanent_address(nic.name, sys_net) is False
    ]
    if moved:
        return Check(
            "nm",
            WARN,
            f"{', '.join(nic.shown for nic in moved)} does not run with its "
            "permanent MAC (sysfs addr_assign_type is not 0): NetworkManager matches the "
            f"drop-in's mac: against the permanent one, so {paths.NM_DROPIN} does not "
            "apply to it",
            "keep the NIC's burned-in MAC (no MACAddress= in a .link "
            "file), then `aoeboot install-entry`",
        )
    return Check(
        "nm",
        OK,
        f"{paths.NM_DROPIN} keeps {shown} managed with its MAC, Wake-on-LAN "
        "on where it has it, and the link up at poweroff",
    )


def _nm_suspend(host: Host, nics: Sequence[nmconf.Nic]) -> list[Check]:
    """Before suspend NetworkManager takes down every NIC it manages but those whose driver
    reports Wake-on-LAN on: then the kernel's sync before sleeping waits for the root disk."""
    here = [nic for nic in nics if nic.name]  # a NIC this system lacks: the interface check
    if host.wake_on_lan is None or not here:
        return []  # not the running system: only its kernel can tell
    without = []
    for nic in here:
        wol = host.wake_on_lan(str(nic.name))
        if wol is None or not wol.enabled:
            without.append((nic, wol))
    if without and bootfiles.watch_link(host.root).is_symlink():
        return [
            Check(
                "suspend",
                OK,
                f"NetworkManager takes {without[0][0].shown} down before "
                f"sleeping (no Wake-on-LAN); {paths.WATCH_SERVICE} brings it up again at "
                "once, so the kernel's last writes before sleeping reach the NAS",
            )
        ]
    if not without:
        return [
            Check(
                "suspend",
                OK,
                f"{', '.join(nic.shown for nic in here)} has Wake-on-LAN "
                "on: NetworkManager leaves its link up into suspend (and takes it down and "
                "up again on resume)",
            )
        ]
    nic, wol = without[0]
    why = (
        "its driver has no Wake-on-LAN"
        if wol is None or not wol.supported
        else "its Wake-on-LAN is off"
    )
    hint = (
        f"`ethtool -s {nic.name} wol g` turns it on now (NetworkManager does at each "
        "activation with the drop-in)"
        if wol is not None and wol.supported & netif.WAKE_MAGIC
        else "do not suspend this box: no setting keeps NetworkManager from taking this NIC "
        "down (virtio-net never has Wake-on-LAN)"
    )
    return [
        Check(
            "suspend",
            WARN,
            f"`systemctl suspend` would hang this box for good: "
            f"NetworkManager takes {nic.shown} down before the kernel's last writes to the "
            f"root disk, and {why}",
            hint,
        )
    ]


def _nm_limits(host: Host, nics: Sequence[nmconf.Nic]) -> Check:
    name = next((nic.name for nic in nics if nic.name), "IF")
    if bootfiles.watch_link(host.root).is_symlink():
        return Check(
            "nm",
            OK,
            f"a link NetworkManager (or anyone) takes down, on `nmcli "
            f"networking off`, `nmcli device set {name} managed no` or `ip link set "
            f"{name} down`, {paths.WATCH_SERVICE} brings up again; a profile that sets "
            "cloned-mac-address would still give the NIC a MAC the NAS does not "
            "answer: never set one on this NIC",
        )
    return Check(
        "nm",
        WARN,
        "no configuration keeps NetworkManager from taking the root disk's "
        f"link down on `nmcli networking off`, `nmcli device set {name} managed no`, or "
        "keyfile unmanaged-devices naming it and a reload, nor from giving it a new MAC "
        "for a profile that sets cloned-mac-address; nor does it bring the link back "
        f"after `ip link set {name} down`: the root disk then waits for ever",
        "never do these on this box",
    )


def _publish(host: Host) -> list[Check]:
    if not host.config.publish.destination:
        return []
    timer = bootfiles.timer_link(host.root)
    if not timer.is_symlink():
        return [
            Check(
                "publish",
                WARN,
                f"{paths.PUBLISH_TIMER} is not enabled: a publish that failed is never retried",
                f"systemctl enable {paths.PUBLISH_TIMER}",
            )
        ] + _publish_state(host)
    return _publish_state(host)


def _publish_state(host: Host) -> list[Check]:
    from aoeboot import publish  # the publishing code only when publishing is configured

    try:
        state = publish.read_state(host.root)
    except AoebootError as err:
        return [
            Check("publish", WARN, str(err), "`aoeboot publish` sets it aside and writes it anew")
        ]
    checks = []
    if state.get("pending"):
        kvers = ", ".join(f"{p['action']} {p['kver']}" for p in state["pending"])
        checks.append(
            Check(
                "publish",
                WARN,
                f"pending since {state.get('updated', '?')}: {kvers} "
                f"({state.get('error') or 'not tried'})",
                "`aoeboot publish` retries",
            )
        )
    published = list(state.get("kernels", []))
    if host.newest and host.newest not in published:
        checks.append(
            Check(
                "publish",
                WARN,
                f"the newest kernel {host.newest} is not on the NAS "
                f"(it has: {', '.join(published) or 'none'})",
                f"kernel-install add {host.newest} /lib/modules/{host.newest}/vmlinuz",
            )
        )
    return checks + _nas_directory(host) + _nas_script(host, published)


def _nas_directory(host: Host) -> list[Check]:
    """The per-host directory is the one the DHCP fragment names: iPXE fetches MAC/boot.ipxe,
    the script path `nas-config` gives for the box's first MAC, unless told otherwise."""
    from aoeboot import publish

    try:
        name = publish.host_name(host.config, host.root)
    except AoebootError as err:
        return [Check("publish", FAIL, err.message, err.hint or "")]
    if host.config.publish.host != "auto":
        return [
            Check(
                "publish",
                OK,
                f"[publish] host = {name}: the NAS's DHCP fragment must "
                f"name {name}/boot.ipxe (`aoeboot nas-config --script {name}/boot.ipxe`)",
            )
        ]
    boot = publish.boot_mac(host.config, host.root)
    return [
        Check(
            "publish",
            OK,
            f"the NAS directory is {name}, the one the DHCP fragment of "
            f"`aoeboot nas-config --mac {boot}` names",
        )
    ]


def _nas_script(host: Host, published: Sequence[str]) -> list[Check]:
    """What the NAS's boot script points at, verified file by file where the NAS is a directory."""
    from aoeboot import publish

    destination = host.config.publish.destination or ""
    if destination.startswith("ssh://"):
        return [
            Check(
                "publish",
                OK,
                f"last publish to {destination}: "
                f"{', '.join(published) or 'no kernel'} (remote files not fetched)",
            )
        ]
    try:
        directory = Path(destination) / publish.host_name(host.config, host.root)
    except AoebootError:
        return []  # _nas_directory said why
    if not Path(destination).is_dir():
        return [
            Check(
                "publish",
                FAIL,
                f"the publish destination {destination} is not there "
                "(the NAS's share not mounted?)",
                "mount it, then `aoeboot publish`",
            )
        ]
    manifest = directory / publish.MANIFEST
    try:
        kernels = publish.parse_manifest(manifest.read_text())
    except FileNotFoundError:
        return [
            Check(
                "publish",
                FAIL,
                f"nothing published in {directory} yet",
                "`aoeboot publish`, or reinstall the kernel",
            )
        ]
    except OSError as err:
        return [
            Check("publish", FAIL, f"cannot read {manifest}: {err.strerror}", "`aoeboot publish`")
        ]
    except AoebootError as err:
        return [Check("publish", FAIL, f"{err} ({manifest})", "`aoeboot publish`")]
    if not (directory / publish.SCRIPT).is_file():
        return [
            Check(
                "publish",
                FAIL,
                f"{directory / publish.SCRIPT} is missing",
                "`aoeboot publish`, or reinstall the kernel",
            )
        ]
    broken = publish.unverified(directory, kernels)
    listed = ", then ".join(str(k.get("kver")) for k in kernels)
    if firmware(host.root) == "UEFI" and not broken:
        from aoeboot.kernel_image import has_efi_stub

        stubless = [
            str(k.get("kver"))
            for k in kernels
            if not has_efi_stub(directory / str(k.get("kernel")))
        ]
        if stubless:
            # iPXE EFI starts a kernel as a PE program: without the EFI stub it cannot
            level = FAIL if len(stubless) == len(kernels) else WARN
            return [
                Check(
                    "publish",
                    level,
                    f"this box boots with UEFI, but the NAS's "
                    f"{publish.SCRIPT} kernels {', '.join(stubless)} have no EFI stub",
                    "a kernel built with CONFIG_EFI_STUB (every distribution kernel)",
                )
            ]
    if broken:
        names = ", ".join(str(k.get("kver")) for k in broken)
        # iPXE falls back kernel by kernel: only when none is whole does the netboot fail.
        level = FAIL if len(broken) == len(kernels) else WARN
        return [
            Check(
                "publish",
                level,
                f"the NAS's {publish.SCRIPT} boots {listed}, but the files "
                f"of {names} are missing or damaged in {directory}",
                "reinstall that kernel, or `aoeboot publish`",
            )
        ]
    return [Check("publish", OK, f"the NAS's {publish.SCRIPT} boots {listed}; files verified")]


def _shown(host: Host, path: Path) -> str:
    """`path` as seen from inside the checked system."""
    return "/" + str(path.relative_to(host.root))
