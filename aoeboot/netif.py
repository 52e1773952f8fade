"""Network interfaces as /sys/class/net shows them: names for MACs, which are up; and their
Wake-on-LAN, as the driver reports it (ethtool's ioctl: sysfs does not show it).

The words, throughout aoeboot: an interface is one by its kernel name (ens3); a NIC is one by
its MAC, as NetworkManager and the NAS know it; its link is its state (up, carrier); netif is
only this module and the aoe driver's sysfs attribute of that name; iface only the options."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aoeboot import mac
from aoeboot.errors import AoebootError
from aoeboot.fsutil import read_or_empty

SYS_NET = Path("/sys/class/net")
ARPHRD_ETHER = 1
IFF_UP = 0x1
NET_ADDR_PERM = 0  # sysfs addr_assign_type: the MAC is the permanent (burned-in) one
SIOCETHTOOL = 0x8946
ETHTOOL_GWOL = 0x5
WAKE_MAGIC = 1 << 5


def address(name: str, sys_net: Path = SYS_NET) -> str | None:
    """The interface's MAC address, or None (no such interface, or not an Ethernet one)."""
    return mac.normal(read_or_empty(sys_net / name / "address"))


def name_of(address_: str, sys_net: Path = SYS_NET) -> str | None:
    """The name of the interface with that MAC address, or None."""
    wanted = mac.normal(address_)
    names = sorted(e.name for e in sys_net.iterdir()) if sys_net.is_dir() else []
    return next((name for name in names if address(name, sys_net) == wanted), None)


def permanent_address(name: str, sys_net: Path = SYS_NET) -> bool | None:
    """Whether the interface's MAC is its permanent one (addr_assign_type 0; a .link file's
    MACAddress= or `ip link set address` make it 3, a random one 1); None if unknown."""
    text = read_or_empty(sys_net / name / "addr_assign_type")
    return int(text) == NET_ADDR_PERM if text.isdigit() else None


@dataclass(frozen=True)
class WakeOnLan:
    supported: int  # the WAKE_* bits the driver offers
    enabled: int  # the WAKE_* bits on now (ETHTOOL_GWOL's wolopts)


def wake_on_lan(name: str) -> WakeOnLan | None:
    """The interface's Wake-on-LAN as ETHTOOL_GWOL gives it, the call NetworkManager makes
    before suspend; None where the driver has none (virtio-net: EOPNOTSUPP) or no such
    interface. Only the running kernel answers: nothing here is read under a root."""
    import ctypes
    import fcntl
    import socket
    import struct

    info = ctypes.create_string_buffer(struct.pack("=III6s", ETHTOOL_GWOL, 0, 0, bytes(6)), 20)
    # struct ifreq: the name, then (in its union) a pointer to struct ethtool_wolinfo
    request = struct.pack("16sP", name.encode()[:15], ctypes.addressof(info)).ljust(40, b"\0")
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            fcntl.ioctl(sock, SIOCETHTOOL, request)
    except OSError:
        return None
    _, supported, enabled = struct.unpack_from("=III", info.raw)
    return WakeOnLan(supported, enabled)


def is_up(name: str, sys_net: Path = SYS_NET) -> bool:
    flags = read_or_empty(sys_net / name / "flags")
    return bool(flags) and bool(int(flags, 16) & IFF_UP)


def ethernet_up(sys_net: Path = SYS_NET) -> list[str]:
    """Every Ethernet interface that is up, loopback excluded."""
    return [
        entry.name
        for entry in sorted(sys_net.iterdir())
        if entry.name != "lo"
        and read_or_empty(entry / "type") == str(ARPHRD_ETHER)
        and is_up(entry.name, sys_net)
    ]


def resolve(interfaces: Sequence[str], sys_net: Path = SYS_NET) -> list[str]:
    """Interface names for `interfaces` (names or MACs, as config.parse_interface gives them);
    each must exist and be up, or the error says which and how to fix it."""
    names = []
    for wanted in interfaces:
        if mac.is_mac(wanted):
            matches = [
                e.name
                for e in sorted(sys_net.iterdir())
                if address(e.name, sys_net) == mac.normal(wanted)
            ]
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
