"""`aoeboot publish` and `aoeboot nas-config`."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command()
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=Path("/"),
              show_default=True, help="The system whose publishing state to complete.")
@click.option("--json", "as_json", is_flag=True, help="Print the publish state as JSON.")
def publish(root: Path, as_json: bool) -> None:
    """Complete pending publishes to the NAS (also run by aoeboot-publish.timer).

    kernel-install publishes every kernel it installs; when the NAS was unreachable the publish
    is recorded as pending in /var/lib/aoeboot/publish.json and completed here. Exit 0 when
    nothing is left pending, 2 when the NAS still fails.
    """
    from aoeboot import config as configuration
    from aoeboot import publish as publishing

    config = configuration.load(root)
    state = publishing.read_state(root)
    if state.get("pending"):
        state = publishing.complete_pending(root, config)
    if as_json:
        click.echo(json.dumps(state, indent=2))
    else:
        kernels = ", ".join(state.get("kernels", [])) or "none"
        click.echo(f"published ({state.get('destination', 'no destination')}): {kernels}; "
                   f"nothing pending")


@click.command("nas-config")
@click.option("--mac", required=True, help="The box's boot NIC MAC address.")
@click.option("--target", "target_text", required=True, metavar="eX.Y[pN]",
              help="The box's AoE root: iPXE gets the disk, root=dhcp the partition.")
@click.option("--format", "fmt", type=click.Choice(["isc-dhcpd", "dnsmasq"]), default="isc-dhcpd",
              show_default=True)
@click.option("--script", default=None, metavar="PATH|URL",
              help="What iPXE fetches: default MAC/boot.ipxe, relative to the TFTP root.")
@click.option("--bios-image", "--ipxe-image", "bios_image", default="undionly.kpxe",
              show_default=True, metavar="FILE",
              help="The iPXE image BIOS PXE firmware (option 93 = 0) chain-loads.")
@click.option("--efi-image", default="snponly.efi", show_default=True, metavar="FILE",
              help="The iPXE image x86-64 UEFI firmware (option 93 = 7 or 9) chain-loads "
                   "(ipxe.efi brings iPXE's own NIC drivers).")
@click.option("--arm64-efi-image", default="", metavar="FILE",
              help="The iPXE image arm64 UEFI firmware (option 93 = 11) chain-loads; none unless "
                   "named.")
def nas_config(mac: str, target_text: str, fmt: str, script: str, bios_image: str,
               efi_image: str, arm64_efi_image: str) -> None:
    """Print the DHCP fragment the NAS needs to netboot this box.

    PXE firmware gets the iPXE image for its architecture (DHCP option 93); iPXE (user-class
    "iPXE") gets the box's boot script and root-path aoe:eX.Y, never iPXE again (that would
    chain-load forever). An image given as "" is not offered.
    """
    from aoeboot import mac as macs
    from aoeboot import nasconfig
    from aoeboot.pxearch import Images, check_plain
    from aoeboot.target import Target

    normal = macs.parse(mac)
    target = Target.parse(target_text)
    script = check_plain("--script", script or f"{macs.hexhyp(normal)}/boot.ipxe")
    images = Images(bios_image, efi_image, arm64_efi_image).checked()
    render = nasconfig.dnsmasq if fmt == "dnsmasq" else nasconfig.isc_dhcpd
    click.echo(render(normal, target, script, images), nl=False)
