"""NetworkManager's configuration drop-in for the NICs that carry the root disk.

NetworkManager takes a NIC's link down whenever it makes a device it manages unmanaged, and it
may give it a new MAC; the root disk then waits for ever (aoe_deadsecs=0), and the NAS's vblade
-m list no longer knows the box. The drop-in holds only what NetworkManager's source shows to
help (doc/nm-findings.md), matched by MAC:

- `managed=1` keeps the NIC managed when a udev rule says NM_UNMANAGED=1, or a lower-priority
  drop-in says managed=0 (unmanaging it takes the link down);
- `ethernet.cloned-mac-address=preserve`, NetworkManager's own default, outranks another
  drop-in's default (random, stable) for these NICs;
- `ethernet.wake-on-lan=64` (magic packet) has NetworkManager turn Wake-on-LAN on where the NIC
  has it: sleep then leaves the link up into suspend;
- `connection.down-on-poweroff=0` outranks another drop-in's default of yes.

It lives in /etc (host configuration: the MACs are this box's), under a late name: drop-ins
there come after /usr/lib's and NetworkManager.conf, and later sections win. What no setting
prevents (`nmcli networking off`, `nmcli device set IF managed no`, keyfile unmanaged-devices,
a profile's own cloned-mac-address, suspend on a NIC without Wake-on-LAN) `status` says.
"""

from __future__ import annotations

import configparser
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aoeboot import driver, mac, netif, paths
from aoeboot.fsutil import atomic_write, read_or_empty, under
from aoeboot.target import Target

SECTION = "aoeboot"
DEVICE = {"managed": "1"}
CONNECTION = {
    "ethernet.cloned-mac-address": "preserve",
    "ethernet.wake-on-lan": "64",  # NM_SETTING_WIRED_WAKE_ON_LAN_MAGIC; the value is a number
    "connection.down-on-poweroff": "0",
}
_DAEMONS = ("/usr/sbin/NetworkManager", "/usr/bin/NetworkManager")


@dataclass(frozen=True)
class Nic:
    """A NIC that carries the root disk: its MAC, and its name where the root shows one."""

    mac: str
    name: str | None = None

    @property
    def shown(self) -> str:
        return f"{self.name} ({self.mac})" if self.name else self.mac


def installed(root: Path) -> bool:
    return any(under(root, daemon).exists() for daemon in _DAEMONS)


def aoe_nics(
    interfaces: Sequence[str], target: Target | None, root: Path
) -> tuple[list[Nic], list[str]]:
    """The NICs the root disk uses, and the configured names no NIC under `root` has. The
    config's interfaces (a name is looked up for its MAC); with none, those through which the
    aoe driver reaches the target."""
    sys_net = under(root, netif.SYS_NET)
    names = list(interfaces)
    if not names and target is not None and driver.is_loaded(root):
        names = [
            name
            for seen in driver.list_targets(root)
            if seen.target == target.disk
            for name, _ in seen.paths
        ]
    nics: dict[str, Nic] = {}
    unknown = []
    for name in names:
        address = mac.normal(name)
        if address:
            nics.setdefault(address, Nic(address, netif.name_of(address, sys_net)))
            continue
        address = netif.address(name, sys_net)
        if address is None:
            unknown.append(name)
        else:
            nics.setdefault(address, Nic(address, name))
    return list(nics.values()), unknown


def render(macs: Sequence[str]) -> str:
    match = ",".join(f"mac:{address}" for address in macs)
    device = "".join(f"{key}={value}\n" for key, value in DEVICE.items())
    connection = "".join(f"{key}={value}\n" for key, value in CONNECTION.items())
    return (
        "# Written by `aoeboot install-entry` for the NICs of the AoE root disk, matched by their\n"
        "# permanent MAC: the disk waits for ever while their link is down or once their MAC\n"
        "# changes. `aoeboot status` says what NetworkManager can still do to them. A later file\n"
        "# in this directory overrides this one.\n"
        f"\n[device-{SECTION}]\nmatch-device={match}\n"
        "# managed even when a udev rule says NM_UNMANAGED=1: unmanaging takes the link down\n"
        f"{device}"
        f"\n[connection-{SECTION}]\nmatch-device={match}\n"
        "# the MAC the NAS knows, whatever another drop-in's default; Wake-on-LAN (magic packet)\n"
        "# where the NIC has it, so suspend leaves the link up; the link up at poweroff\n"
        f"{connection}"
    )


def covered(text: str) -> set[str]:
    """The MACs a drop-in's text gives every setting of ours: matched by both sections, each
    with our values. Empty when the text is not a keyfile."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(text)
    except configparser.Error:
        return set()
    found = []
    for section, wanted in ((f"device-{SECTION}", DEVICE), (f"connection-{SECTION}", CONNECTION)):
        if not parser.has_section(section) or any(
            parser.get(section, key, fallback=None) != value for key, value in wanted.items()
        ):
            return set()
        specs = parser.get(section, "match-device", fallback="").replace(";", ",").split(",")
        found.append(
            {mac.normal(spec.strip()[4:]) for spec in specs if spec.strip().startswith("mac:")}
            - {None}
        )
    return {address for address in found[0] & found[1] if address}


def ensure(root: Path, macs: Sequence[str]) -> bool:
    """Write the drop-in for `macs`; True if it changed."""
    path = under(root, paths.NM_DROPIN)
    text = render(macs)
    if read_or_empty(path) == text.strip():
        return False
    atomic_write(path, text)
    return True
