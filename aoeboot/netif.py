"""Network interfaces as /sys/class/net shows them: names for MACs, which are up."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from aoeboot import mac
from aoeboot.errors import AoebootError
from aoeboot.fsutil import read_or_empty

SYS_NET = Path("/sys/class/net")
ARPHRD_ETHER = 1
IFF_UP = 0x1


def address(name: str, sys_net: Path = SYS_NET) -> str | None:
    """The interface's MAC address, or None (no such interface, or not an Ethernet one)."""
    return mac.normal(read_or_empty(sys_net / name / "address"))


def is_up(name: str, sys_net: Path = SYS_NET) -> bool:
    flags = read_or_empty(sys_net / name / "flags")
    return bool(flags) and bool(int(flags, 16) & IFF_UP)


def ethernet_up(sys_net: Path = SYS_NET) -> list[str]:
    """Every Ethernet interface that is up, loopback excluded."""
    return [entry.name for entry in sorted(sys_net.iterdir())
            if entry.name != "lo" and read_or_empty(entry / "type") == str(ARPHRD_ETHER)
            and is_up(entry.name, sys_net)]


def resolve(interfaces: Sequence[str], sys_net: Path = SYS_NET) -> list[str]:
    """Interface names for `interfaces` (names or MACs, as config.parse_interface gives them);
    each must exist and be up, or the error says which and how to fix it."""
    names = []
    for wanted in interfaces:
        if mac.is_mac(wanted):
            matches = [e.name for e in sorted(sys_net.iterdir())
                       if address(e.name, sys_net) == mac.normal(wanted)]
            if not matches:
                raise AoebootError(f"no interface has the MAC address {wanted}")
            name = matches[0]
        elif (sys_net / wanted).exists():
            name = wanted
        else:
            raise AoebootError(f"no such interface: {wanted}")
        if not is_up(name, sys_net):
            raise AoebootError(f"interface {name} is down", hint=f"ip link set {name} up")
        names.append(name)
    return names
