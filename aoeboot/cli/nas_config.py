"""`aoeboot nas-config`: what the NAS needs for this box (DHCP fragment, vblade export)."""

from __future__ import annotations

import click

from aoeboot import mac
from aoeboot.nasconfig import MIN_MTU

FORMATS = ["isc-dhcpd", "dnsmasq", "kea", "vblade", "vblade-unit"]


@click.command("nas-config")
@click.option(
    "--mac",
    "mac_texts",
    required=True,
    multiple=True,
    metavar="MAC",
    help="The box's NIC MAC address; repeatable (every NIC that boots or reaches the disk).",
)
@click.option(
    "--target",
    "target_text",
    required=True,
    metavar="eX.Y[pN]",
    help="The box's AoE root: iPXE gets the disk, root=dhcp the partition, vblade "
    "exports the disk.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="isc-dhcpd",
    show_default=True,
    help="A DHCP fragment (kea: Kea DHCPv4's JSON, for Fedora, where isc-dhcpd is "
    "deprecated), the vblade command line, or a systemd unit running it.",
)
@click.option(
    "--script",
    default=None,
    metavar="PATH|URL",
    help="What iPXE fetches: default MAC/boot.ipxe, relative to the TFTP root.",
)
@click.option(
    "--bios-image",
    "--ipxe-image",
    "bios_image",
    default="undionly.kpxe",
    show_default=True,
    metavar="FILE",
    help="The iPXE image BIOS PXE firmware (option 93 = 0) chain-loads.",
)
@click.option(
    "--efi-image",
    default="snponly.efi",
    show_default=True,
    metavar="FILE",
    help="The iPXE image x86-64 UEFI firmware (option 93 = 7 or 9) chain-loads "
    "(ipxe.efi brings iPXE's own NIC drivers).",
)
@click.option(
    "--arm64-efi-image",
    default="",
    metavar="FILE",
    help="The iPXE image arm64 UEFI firmware (option 93 = 11) chain-loads; none unless named.",
)
@click.option(
    "--nas-iface",
    "nas_iface",
    default=None,
    metavar="IF",
    help="vblade: the NAS's interface towards the box.",
)
@click.option(
    "--export",
    "export",
    default=None,
    metavar="PATH",
    help="vblade: the file or block device holding the box's disk (/dev/vg/box).",
)
@click.option(
    "--unsafe-no-sync",
    "unsafe_no_sync",
    is_flag=True,
    help="vblade: leave out -s. UNSAFE: vblade then acknowledges writes still in the "
    "NAS's page cache, and a power cut on the NAS loses writes the box's fsync "
    "reported done, which can leave its file systems unmountable.",
)
@click.option(
    "--mtu",
    type=click.IntRange(MIN_MTU, 65535),
    default=None,
    metavar="BYTES",
    help="vblade: set the NAS interface's MTU first (9000: jumbo frames, 17 sectors "
    "per frame against 2 at 1500); refused where that interface, here, cannot "
    "carry it.",
)
def nas_config(
    mac_texts: tuple[str, ...],
    target_text: str,
    fmt: str,
    script: str | None,
    bios_image: str,
    efi_image: str,
    arm64_efi_image: str,
    nas_iface: str | None,
    export: str | None,
    unsafe_no_sync: bool,
    mtu: int | None,
) -> None:
    """Print what the NAS needs for this box: its DHCP fragment, or its vblade export.

    DHCP (isc-dhcpd, dnsmasq, kea): PXE firmware gets the iPXE image for its architecture
    (DHCP option 93; an image given as "" is not offered); iPXE (user-class "iPXE") gets the
    box's boot script and root-path aoe:eX.Y, never iPXE again (that would chain-load
    forever). kea is for Fedora, where isc-dhcpd is deprecated: client classes (JSON) that go
    first into "client-classes" of "Dhcp4" in kea-dhcp4.conf.

    vblade, vblade-unit: the vblade command line (or a systemd service running it) that
    exports the box's disk on --nas-iface from --export, answering the box's MACs only
    (vblade -m): AoE has no authentication, and any other machine on the network could
    otherwise read and write the disk. With -s every write is on the NAS's disk before vblade
    acknowledges it: the box's fsync means nothing on the NAS without it. An --export that
    exists here (run on the NAS) must be a file or a block device nothing here has mounted.
    --mtu sets the interface's MTU before vblade starts (it reads it then).
    """
    from aoeboot import nasconfig
    from aoeboot.config import interface_name
    from aoeboot.errors import AoebootError
    from aoeboot.pxearch import Images, check_boot_file
    from aoeboot.target import Target

    nic_macs = nasconfig.box_macs(mac_texts)
    target = Target.parse(target_text)
    if fmt.startswith("vblade"):
        if nas_iface is None or export is None:
            raise AoebootError(
                f"--format {fmt} needs --nas-iface IF and --export PATH",
                hint="the NAS's interface towards the box, and the file or device holding its disk",
            )
        netif, path = interface_name(nas_iface), nasconfig.export_path(export)
        nasconfig.check_export_here(path)
        if mtu is not None:
            nasconfig.check_mtu_here(netif, mtu)
        render = nasconfig.vblade_unit if fmt == "vblade-unit" else nasconfig.vblade_command
        click.echo(
            render(nic_macs, target, netif, path, durable=not unsafe_no_sync, mtu=mtu), nl=False
        )
        return
    if mtu is not None:
        raise AoebootError(f"--mtu is for --format vblade or vblade-unit, not {fmt}")
    script = check_boot_file("--script", script or f"{mac.hexhyp(nic_macs[0])}/boot.ipxe")
    images = Images(bios_image, efi_image, arm64_efi_image).checked()
    if fmt == "kea":
        click.echo(nasconfig.kea(nic_macs, target, script, images), nl=False)
        return
    render_dhcp = nasconfig.dnsmasq if fmt == "dnsmasq" else nasconfig.isc_dhcpd
    click.echo(
        "".join(
            render_dhcp(nic_mac, target, script, images, first=index == 0)
            for index, nic_mac in enumerate(nic_macs)
        ),
        nl=False,
    )
