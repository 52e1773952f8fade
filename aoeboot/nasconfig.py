"""What the NAS needs for this box: its DHCP fragment and its vblade export.

DHCP: the firmware's client-architecture option (93) picks the iPXE image (aoeboot.pxearch):
BIOS gets `undionly.kpxe`, x86-64 UEFI an EFI build. iPXE identifies itself with user-class
"iPXE"; it must never be handed iPXE again, or it chain-loads itself forever, so that test comes
first. iPXE's root-path names the disk (`sanboot aoe:e11.0`); everyone else (the initramfs's
DHCP client, for root=dhcp) gets the target itself, partition included.

Kea (kea-dhcp4, which replaces dhcpd on Fedora) gets client classes and no host reservation: a
reservation's options outrank every class for every packet it matches, iPXE's too, so it
cannot give iPXE the disk and the initramfs the partition (iPXE refuses `aoe:eX.YpN`: "Could
not open SAN device"). The classes test the box's MACs (pkt4.mac) themselves, so Kea evaluates
them as the packet arrives, in the order they are listed, whatever its reservations, subnets
and shared networks are; a class that reservations assign (member()) would not be evaluated in
time inside a shared network. The iPXE class comes first and every option-93 class excludes
iPXE, so iPXE never gets an image, and a client with another MAC gets nothing from these.

vblade: AoE has no authentication; vblade's `-m mac[,mac...]` is its one access control. A
listed MAC is the only source whose frames vblade answers (no Query Config answer, no ATA
command for anyone else); with `-m` its announcement at start goes to those MACs alone.
vblade parses the list loosely (a MAC it cannot parse is skipped with a message, and with none
left the export is open to all; more than 32 overrun its table), so the list is validated here.

vblade acknowledges a write once pwrite() returns and never flushes; the box's driver sends no
flush either. Only `-s` (O_SYNC) puts each acknowledged write on the NAS's disk before the ack,
so it is the default: without it a power cut on the NAS loses writes the box's fsync reported
done, and can leave its file systems unmountable.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import stat
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from aoeboot import mac as macs
from aoeboot import wire
from aoeboot.config import interface_name
from aoeboot.errors import AoebootError
from aoeboot.fsutil import read_or_empty
from aoeboot.netif import SYS_NET
from aoeboot.pxearch import ARCHES, IMAGE_OPTIONS, Images
from aoeboot.target import Target

VBLADE = "/usr/sbin/vblade"  # Debian's and Fedora's vblade package
IP = "/usr/sbin/ip"  # iproute2, on Debian and Fedora
MIN_MTU = wire.FRAME_HEADERS + wire.SECTOR  # one sector per frame
MAX_MASKS = 32  # vblade's Nmasks
KEA_FILE_MAX = 128  # the DHCP header's file field, where Kea puts a class's boot-file-name
_PATH_PART = re.compile(r"[A-Za-z0-9_+~:@,=-][A-Za-z0-9._+~:@,=-]*")


def host_tag(mac: str) -> str:
    return "aoeboot-" + macs.hexraw(mac)


def _isc_arch_test(firmware: str) -> str:
    # pxe-system-type is isc-dhcpd's built-in name for option 93 (an array of 16-bit values)
    return " or ".join(
        f"option pxe-system-type = {arch >> 8:02x}:{arch & 0xFF:02x}" for arch in ARCHES[firmware]
    )


def isc_dhcpd(mac: str, target: Target, script: str, images: Images, first: bool = True) -> str:
    """One host block per NIC of the box (`first` does not matter here)."""
    lines: list[str] = [
        f"# aoeboot: {mac} boots root from {target.uri}",
        f"host {host_tag(mac)} {{",
        f"  hardware ethernet {mac};",
        '  if exists user-class and option user-class = "iPXE" {',
        f'    filename "{script}";',
        f'    option root-path "{target.disk.uri}";',
        "  } else {",
        f'    option root-path "{target.uri}";',
    ]
    offered = list(images.by_firmware().items())
    for index, (firmware, image) in enumerate(offered):
        opener = "} elsif" if index else "if"
        lines += [f"    {opener} {_isc_arch_test(firmware)} {{", f'      filename "{image}";']
    if offered:
        lines.append("    }")
    lines += ["  }", "}", ""]
    return "\n".join(lines)


def dnsmasq(mac: str, target: Target, script: str, images: Images, first: bool = True) -> str:
    """One block per NIC of the box; the user-class and architecture tags are set once, in the
    `first`."""
    tag = host_tag(mac)
    offered = images.by_firmware()
    lines: list[str] = [
        f"# aoeboot: {mac} boots root from {target.uri}",
        f"dhcp-host={mac},set:{tag}",
    ]
    if first:
        lines.append("dhcp-userclass=set:ipxe,iPXE")
        for firmware in offered:
            lines += [
                f"dhcp-match=set:aoeboot-{firmware},option:client-arch,{arch}"
                for arch in ARCHES[firmware]
            ]
    lines += [
        f"dhcp-boot=tag:{tag},tag:!ipxe,tag:aoeboot-{firmware},{image}"
        for firmware, image in offered.items()
    ]
    lines += [
        f"dhcp-boot=tag:{tag},tag:ipxe,{script}",
        f"dhcp-option=tag:{tag},tag:ipxe,option:root-path,{target.disk.uri}",
        f"dhcp-option=tag:{tag},tag:!ipxe,option:root-path,{target.uri}",
        "",
    ]
    return "\n".join(lines)


def _kea_any(tests: Sequence[str]) -> str:
    return tests[0] if len(tests) == 1 else "(" + " or ".join(tests) + ")"


def _kea_file(what: str, name: str) -> str:
    if len(name.encode()) > KEA_FILE_MAX:
        raise AoebootError(
            f"{what}: {name!r} is longer than the {KEA_FILE_MAX} bytes of the "
            "DHCP file field, where Kea puts a boot file name"
        )
    return name


def _kea_root_path(uri: str) -> dict[str, object]:
    # always-send: the initramfs's DHCP client may not ask for option 17 (PRL)
    return {"name": "root-path", "code": 17, "data": uri, "always-send": True}


def kea_classes(
    nic_macs: Sequence[str], target: Target, script: str, images: Images
) -> list[dict[str, object]]:
    """Kea DHCPv4 client classes for the box's NIC MACs (as box_macs returns them), in the
    order Kea must evaluate them: iPXE first, then everyone else of the box, then one class per
    offered image that only the latter can join."""
    box_test = _kea_any([f"pkt4.mac == 0x{macs.hexraw(mac)}" for mac in nic_macs])
    name = host_tag(nic_macs[0])
    ipxe = f"{name}-ipxe"
    classes: list[dict[str, object]] = [
        {
            "name": ipxe,
            "test": f"{box_test} and option[77].hex == 'iPXE'",
            "boot-file-name": _kea_file("--script", script),
            "option-data": [_kea_root_path(target.disk.uri)],
        },
        {
            "name": name,
            "test": f"{box_test} and not member('{ipxe}')",
            "option-data": [_kea_root_path(target.uri)],
        },
    ]
    for firmware, image in images.by_firmware().items():
        arch = _kea_any([f"option[93].hex == 0x{value:04x}" for value in ARCHES[firmware]])
        classes.append(
            {
                "name": f"{name}-{firmware}",
                "test": f"member('{name}') and {arch}",
                "boot-file-name": _kea_file(IMAGE_OPTIONS[firmware], image),
            }
        )
    return classes


# Where kea()'s classes go, and what would outrank them.
KEA_HOW_TO_MERGE = (
    '// Put these classes first into "client-classes" of "Dhcp4" in kea-dhcp4.conf: Kea takes',
    "// the boot file and root-path of the first class that has them. They find the box by",
    "// MAC and need no reservation; one it has must not set boot-file-name or root-path",
    "// (option 17), nor its subnet, pool or shared network root-path: those outrank classes.",
)


def kea(nic_macs: Sequence[str], target: Target, script: str, images: Images) -> str:
    """The classes as JSON to merge into kea-dhcp4.conf's "Dhcp4", under a comment saying where
    (Kea's configuration parser takes // comments)."""
    document = json.dumps(
        {"client-classes": kea_classes(nic_macs, target, script, images)}, indent=2
    )
    return "\n".join(
        [
            f"// aoeboot: Kea DHCPv4 for {', '.join(nic_macs)}, root on {target.uri}.",
            *KEA_HOW_TO_MERGE,
            "// The TFTP server is the subnet's next-server. Then: kea-dhcp4 -t "
            "/etc/kea/kea-dhcp4.conf",
            document,
            "",
        ]
    )


def box_macs(texts: Sequence[str]) -> list[str]:
    """The box's NIC MACs, each once, in aoeboot's form; what a NIC cannot have is an error."""
    found: list[str] = []
    for text in texts:
        normal = macs.one_nic(text)
        if normal not in found:
            found.append(normal)
    if not found:
        raise AoebootError("no MAC address given", hint="--mac MAC, once per NIC of the box")
    if len(found) > MAX_MASKS:
        raise AoebootError(f"{len(found)} MACs given: vblade takes at most {MAX_MASKS}")
    return found


def export_path(text: str) -> str:
    """The file or block device vblade exports: an absolute, normalised path of plain names
    (it ends up in a command line and a unit file, and is shown to the user)."""
    path = PurePosixPath(text)
    parts = text.split("/")[1:]
    if (
        not text.startswith("/")
        or len(text) > 4096
        or not parts
        or not all(_PATH_PART.fullmatch(p) and p not in (".", "..") for p in parts)
        or str(path) != text
    ):
        raise AoebootError(
            f"invalid export path {text!r}",
            hint="an absolute path of plain names, e.g. /dev/vg/box or /srv/aoe/box.img",
        )
    return text


def check_export_here(
    export: str, mounts: str = "/proc/self/mountinfo", swaps: str = "/proc/swaps"
) -> None:
    """Where `export` exists on this machine (nas-config run on the NAS), it must be a regular
    file or a block device that nothing here has mounted or swaps on. Absent: not checked."""
    try:
        info = os.stat(export)
    except FileNotFoundError:
        return
    except OSError as err:
        raise AoebootError(f"export {export}: {err.strerror}") from None
    if stat.S_ISREG(info.st_mode):
        return
    if not stat.S_ISBLK(info.st_mode):
        raise AoebootError(f"export {export} is neither a regular file nor a block device")
    device = f"{os.major(info.st_rdev)}:{os.minor(info.st_rdev)}"
    for line in _lines(mounts):
        fields = line.split()
        if len(fields) > 4 and fields[2] == device:
            raise AoebootError(
                f"export {export} is mounted here on {fields[4]}: the box and "
                "this machine would write one file system at once"
            )
    for line in _lines(swaps)[1:]:
        used = line.split()[0] if line.split() else ""
        if used and os.path.exists(used) and os.path.samefile(used, export):
            raise AoebootError(f"export {export} is in use as swap here")


def check_mtu_here(name: str, mtu: int, sys_net: Path = SYS_NET) -> None:
    """Where interface `name` exists on this machine (nas-config run on the NAS), it must be
    able to carry `mtu`: within its driver's limits (`ip -d link`), and, for a VLAN, macvlan or
    the like, no larger than its lower link's MTU (the kernel refuses more). Absent: not
    checked."""
    if not (sys_net / name).exists():
        return
    from aoeboot.run import run

    try:
        link = json.loads(run(["ip", "-j", "-d", "link", "show", "dev", name]).stdout)[0]
    except (AoebootError, ValueError, IndexError, KeyError):
        return  # no iproute2 to ask, or an answer it cannot read: vblade will tell
    highest, lowest = link.get("max_mtu"), link.get("min_mtu", 0)
    if isinstance(highest, int) and highest and not lowest <= mtu <= highest:
        raise AoebootError(
            f"--mtu {mtu}: {name} here carries {lowest} to {highest} bytes "
            f"(it has {link.get('mtu')})"
        )
    lower = link.get("link")  # the link a macvlan or VLAN sits on; none for a NIC
    if not isinstance(lower, str):
        return
    try:
        lower_mtu = read_or_empty(sys_net / interface_name(lower) / "mtu")
    except AoebootError:
        return
    if lower_mtu.isdigit() and mtu > int(lower_mtu):
        raise AoebootError(
            f"--mtu {mtu}: {name} here sits on {lower}, whose MTU is {lower_mtu}",
            hint=f"raise {lower}'s MTU first",
        )


def mtu_lines(netif: str, mtu: int | None) -> list[str]:
    if mtu is None:
        return []
    sectors = wire.frame_sectors(mtu)
    return [
        f"# MTU {mtu} on {netif}: {sectors} sectors ({sectors * 512} bytes) per frame.",
        "# The switch and the box's NIC must carry it too (aoeboot status shows the frame).",
    ]


def _lines(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read().splitlines()
    except OSError:
        return []


def vblade_argv(
    nic_macs: Sequence[str],
    target: Target,
    netif: str,
    export: str,
    program: str = "vblade",
    durable: bool = True,
) -> list[str]:
    """`vblade -s -m MAC[,MAC...] SHELF SLOT NETIF FILE`: the box's whole disk, to its MACs only,
    each write on the NAS's disk before it is acknowledged (`durable`). `nic_macs`, `netif` and
    `export` as box_macs, config.interface_name and export_path return them."""
    disk = target.disk
    sync = ["-s"] if durable else []
    return [
        program,
        *sync,
        "-m",
        ",".join(nic_macs),
        str(disk.shelf),
        str(disk.slot),
        netif,
        export,
    ]


def durability_lines(durable: bool) -> list[str]:
    """What the printed export promises about a power cut on the NAS, and how to check it there."""
    if not durable:
        return [
            "# UNSAFE (no -s): writes are acknowledged from the NAS's page cache; a power cut",
            "# on the NAS loses writes the box was told are on disk, and can break its file",
            "# systems.",
        ]
    return [
        "# -s: every write is on the NAS's disk before vblade acknowledges it (O_SYNC).",
        "# Check on the NAS: 'ps -o args= -C vblade' shows -s for every export.",
    ]


def mtu_argv(netif: str, mtu: int, program: str = "ip") -> list[str]:
    return [program, "link", "set", "dev", netif, "mtu", str(mtu)]


def vblade_command(
    nic_macs: Sequence[str],
    target: Target,
    netif: str,
    export: str,
    durable: bool = True,
    mtu: int | None = None,
) -> str:
    """The command lines to run on the NAS, quoted for a POSIX shell: the interface's MTU
    first (vblade reads it as it starts), then vblade."""
    return "\n".join(
        [
            f"# aoeboot: export {target.disk.name} on {netif} to {', '.join(nic_macs)} only",
            *durability_lines(durable),
            *mtu_lines(netif, mtu),
            *([shlex.join(mtu_argv(netif, mtu))] if mtu is not None else []),
            shlex.join(vblade_argv(nic_macs, target, netif, export, durable=durable)),
            "",
        ]
    )


def unit_name(target: Target) -> str:
    return f"vblade-{target.disk.name}.service"


def _unit_word(word: str) -> str:
    """One ExecStart= argument. Every input is validated to plain characters, so none needs
    systemd's quoting, and none holds a specifier (%) or a variable ($)."""
    if not re.fullmatch(r"[A-Za-z0-9_.,:/@+=~-]+", word):
        raise AoebootError(f"cannot put {word!r} into a unit file unquoted")
    return word


def vblade_unit(
    nic_macs: Sequence[str],
    target: Target,
    netif: str,
    export: str,
    durable: bool = True,
    mtu: int | None = None,
) -> str:
    """A systemd service for the NAS that runs vblade_argv and restarts it if it stops (an
    interface that is not there yet, a NAS under load); install it as unit_name(target)."""
    argv = vblade_argv(nic_macs, target, netif, export, program=VBLADE, durable=durable)
    name = unit_name(target)
    return "\n".join(
        [
            f"# aoeboot: /etc/systemd/system/{name} on the NAS: exports {export} as "
            f"{target.disk.name}",
            f"# on {netif}, answering {', '.join(nic_macs)} only (vblade -m).",
            *durability_lines(durable),
            *mtu_lines(netif, mtu),
            f"# systemctl daemon-reload && systemctl enable --now {name}",
            "[Unit]",
            f"Description=AoE export {target.disk.name} for {', '.join(nic_macs)}",
            "Documentation=man:vblade(8)",
            "After=network.target",
            "",
            "[Service]",
            *(
                ["ExecStartPre=" + " ".join(_unit_word(word) for word in mtu_argv(netif, mtu, IP))]
                if mtu is not None
                else []
            ),
            "ExecStart=" + " ".join(_unit_word(word) for word in argv),
            "Restart=always",
            "RestartSec=5",
            "",
            "[Install]",
            "WantedBy=multi-user.target",
            "",
        ]
    )
