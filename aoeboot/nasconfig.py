"""DHCP configuration for the NAS: PXE firmware gets iPXE, iPXE gets this box's script.

The firmware's client-architecture option (93) picks the iPXE image (aoeboot.pxearch): BIOS gets
`undionly.kpxe`, x86-64 UEFI an EFI build. iPXE identifies itself with user-class "iPXE"; it
must never be handed iPXE again, or it chain-loads itself forever, so that test comes first.
iPXE's root-path names the disk (`sanboot aoe:e11.0`); everyone else (the initramfs's DHCP
client, for root=dhcp) gets the target itself, partition included.
"""

from __future__ import annotations

from typing import List

from aoeboot import mac as macs
from aoeboot.pxearch import ARCHES, Images
from aoeboot.target import Target


def host_tag(mac: str) -> str:
    return "aoeboot-" + macs.hexraw(mac)


def _isc_arch_test(firmware: str) -> str:
    # pxe-system-type is isc-dhcpd's built-in name for option 93 (an array of 16-bit values)
    return " or ".join(f"option pxe-system-type = {arch >> 8:02x}:{arch & 0xff:02x}"
                       for arch in ARCHES[firmware])


def isc_dhcpd(mac: str, target: Target, script: str, images: Images) -> str:
    lines: List[str] = [
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


def dnsmasq(mac: str, target: Target, script: str, images: Images) -> str:
    tag = host_tag(mac)
    offered = images.by_firmware()
    lines: List[str] = [
        f"# aoeboot: {mac} boots root from {target.uri}",
        f"dhcp-host={mac},set:{tag}",
        "dhcp-userclass=set:ipxe,iPXE",
    ]
    for firmware in offered:
        lines += [f"dhcp-match=set:aoeboot-{firmware},option:client-arch,{arch}"
                  for arch in ARCHES[firmware]]
    lines += [f"dhcp-boot=tag:{tag},tag:!ipxe,tag:aoeboot-{firmware},{image}"
              for firmware, image in offered.items()]
    lines += [
        f"dhcp-boot=tag:{tag},tag:ipxe,{script}",
        f"dhcp-option=tag:{tag},tag:ipxe,option:root-path,{target.disk.uri}",
        f"dhcp-option=tag:{tag},tag:!ipxe,option:root-path,{target.uri}",
        "",
    ]
    return "\n".join(lines)
