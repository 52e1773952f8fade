"""DHCP configuration for the NAS: PXE firmware gets iPXE, iPXE gets this box's script.

iPXE identifies itself with user-class "iPXE"; it must never be handed iPXE again, or it
chain-loads itself forever. iPXE's root-path names the disk (`sanboot aoe:e11.0`); everyone
else (the initramfs's DHCP client, for root=dhcp) gets the target itself, partition included.
"""

from __future__ import annotations

from aoeboot import mac as macs
from aoeboot.target import Target


def host_tag(mac: str) -> str:
    return "aoeboot-" + macs.hexraw(mac)


def isc_dhcpd(mac: str, target: Target, script: str, ipxe_image: str) -> str:
    return "\n".join([
        f"# aoeboot: {mac} boots root from {target.uri}",
        f"host {host_tag(mac)} {{",
        f"  hardware ethernet {mac};",
        '  if exists user-class and option user-class = "iPXE" {',
        f'    filename "{script}";',
        f'    option root-path "{target.disk.uri}";',
        "  } else {",
        f'    filename "{ipxe_image}";',
        f'    option root-path "{target.uri}";',
        "  }",
        "}",
        "",
    ])


def dnsmasq(mac: str, target: Target, script: str, ipxe_image: str) -> str:
    tag = host_tag(mac)
    return "\n".join([
        f"# aoeboot: {mac} boots root from {target.uri}",
        f"dhcp-host={mac},set:{tag}",
        "dhcp-userclass=set:ipxe,iPXE",
        f"dhcp-boot=tag:{tag},tag:!ipxe,{ipxe_image}",
        f"dhcp-boot=tag:{tag},tag:ipxe,{script}",
        f"dhcp-option=tag:{tag},tag:ipxe,option:root-path,{target.disk.uri}",
        f"dhcp-option=tag:{tag},tag:!ipxe,option:root-path,{target.uri}",
        "",
    ])
