"""The DHCP fragments in the real servers: dnsmasq, isc-dhcpd and Kea, configured with what
`aoeboot nas-config` prints, answer a PXE client's DHCPDISCOVER for each firmware (option 93)
with the right iPXE image, and iPXE itself (user-class "iPXE") with the script, never iPXE."""

from __future__ import annotations

import contextlib
import re
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from aoelab.dhcpclient import Offer, discover
from aoelab.dnsmasq import NAS_IP, Dnsmasq
from aoelab.kea import Kea
from aoelab.netns import Namespace, veth_pair
from tests.helpers import aoeboot, require_programs, require_root

MAC = "52:54:00:12:34:56"
MAC2 = "52:54:00:ab:cd:ef"  # the box's second NIC
OTHER = "52:54:00:aa:bb:cc"  # another machine on the network
SCRIPT = "52-54-00-12-34-56/boot.ipxe"
# (option 93 or None, user class) -> what the default fragment offers
DEFAULTS: dict[tuple[int | None, str | None], str] = {
    (0, None): "undionly.kpxe",  # BIOS
    (7, None): "snponly.efi",  # x86-64 UEFI (OVMF, most PCs)
    (9, None): "snponly.efi",  # x86-64 UEFI, the other number
    (11, None): "",  # arm64 UEFI: nothing unless named
    (6, None): "",  # IA32 UEFI: nothing
    (7, "iPXE"): SCRIPT,  # iPXE EFI asks again: the script, never iPXE
    (0, "iPXE"): SCRIPT,
    (None, None): "",  # no option 93: not PXE firmware (the initramfs's DHCP client)
}
OVERRIDES = (
    "--bios-image",
    "bios/undionly.kpxe",
    "--efi-image",
    "efi/ipxe.efi",
    "--arm64-efi-image",
    "arm64/snp.efi",
)
OVERRIDDEN: dict[tuple[int | None, str | None], str] = {
    (0, None): "bios/undionly.kpxe",
    (7, None): "efi/ipxe.efi",
    (9, None): "efi/ipxe.efi",
    (11, None): "arm64/snp.efi",
    (11, "iPXE"): SCRIPT,
}


def fragment(fmt: str, *extra: str) -> str:
    out = aoeboot("nas-config", "--mac", MAC, "--target", "e11.0p1", "--format", fmt, *extra)
    assert out.returncode == 0, out.stderr
    return out.stdout


@contextlib.contextmanager
def link() -> Iterator[tuple[Namespace, Namespace]]:
    require_root()
    with Namespace("aoedh") as nas, Namespace("aoedh") as client:
        veth_pair(nas, "nas0", client, "eth0", right_mac=MAC)
        yield nas, client


def ask(client: Namespace, arch: int | None, user_class: str | None, mac: str = MAC) -> Offer:
    return discover(client, "eth0", mac, arch=arch, user_class=user_class, timeout=15)


def logged_bootfile(log: Path, xid: int) -> str | None:
    """What dnsmasq's --log-dhcp says it offered in transaction `xid` (None: no offer logged)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        # the offer's options are logged after its boot file: once its type is, the rest is there
        if re.search(rf" {xid} DHCPOFFER\(", text) and re.search(
            rf" {xid} sent size: +1 option: 53 message-type +2$", text, re.M
        ):
            match = re.search(rf" {xid} bootfile name: (\S+)$", text, re.M)
            return match.group(1) if match else ""
        time.sleep(0.1)
    return None


@pytest.mark.parametrize(
    "extra,expected", [((), DEFAULTS), (OVERRIDES, OVERRIDDEN)], ids=["defaults", "overrides"]
)
def test_dnsmasq_offers_the_image_for_each_firmware(
    tmp_path: Path, extra: Sequence[str], expected: dict[tuple[int | None, str | None], str]
):
    require_programs("dnsmasq")
    with (
        link() as (nas, client),
        Dnsmasq(nas, "nas0", tmp_path, fragment("dnsmasq", *extra), tmp_path) as server,
    ):
        for (arch, user_class), image in expected.items():
            offer = ask(client, arch, user_class)
            assert logged_bootfile(server.log, offer.xid) == image, (arch, user_class)
            assert offer.file == image, (arch, user_class)
            # iPXE's root-path names the disk (sanboot); everyone else's the partition
            assert offer.root_path == ("aoe:e11.0" if user_class else "aoe:e11.0p1")


def test_isc_dhcpd_offers_the_image_for_each_firmware(tmp_path: Path):
    require_programs("dhcpd")
    conf = tmp_path / "dhcpd.conf"
    conf.write_text(
        "authoritative;\nsubnet 10.77.0.0 netmask 255.255.255.0 {\n"
        "  range 10.77.0.50 10.77.0.99;\n}\n" + fragment("isc-dhcpd", *OVERRIDES)
    )
    leases = tmp_path / "dhcpd.leases"
    leases.write_text("")
    checked = subprocess.run(["dhcpd", "-t", "-cf", str(conf)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    with link() as (nas, client):
        nas.run(["ip", "addr", "add", f"{NAS_IP}/24", "dev", "nas0"])
        server = nas.popen(
            [
                "dhcpd",
                "-4",
                "-f",
                "-d",
                "-cf",
                str(conf),
                "-lf",
                str(leases),
                "-pf",
                str(tmp_path / "dhcpd.pid"),
                "nas0",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            for (arch, user_class), image in {**OVERRIDDEN, (None, None): ""}.items():
                offer = ask(client, arch, user_class)
                assert offer.file == image, (arch, user_class)
                assert offer.root_path == ("aoe:e11.0" if user_class else "aoe:e11.0p1")
        finally:
            server.terminate()
            server.wait(timeout=10)


RESERVED = [{"hw-address": MAC, "ip-address": "10.77.0.10"}]  # an address, no options


@pytest.mark.parametrize(
    "extra,expected,reservations,shared",
    [
        ((), DEFAULTS, [], False),
        ((*OVERRIDES, "--mac", MAC2), OVERRIDDEN, RESERVED, False),
        ((), DEFAULTS, RESERVED, True),
    ],
    ids=["defaults", "overrides-two-nics-reserved", "defaults-reserved-shared-network"],
)
def test_kea_offers_the_image_for_each_firmware(
    tmp_path: Path,
    extra: Sequence[str],
    expected: dict[tuple[int | None, str | None], str],
    reservations: Sequence[dict[str, object]],
    shared: bool,
):
    # the classes find the box by MAC: a reservation of its own (an address) or a shared
    # network changes nothing, though either would hide classes that reservations assign
    require_programs("kea-dhcp4")
    with (
        link() as (nas, client),
        Kea(nas, "nas0", fragment("kea", *extra), tmp_path, reservations, shared) as server,
    ):
        # iPXE with no option 93 too (iPXE's DHCP sends it, but need not)
        for (arch, user_class), image in {**expected, (None, "iPXE"): SCRIPT}.items():
            offer = ask(client, arch, user_class)
            assert offer.file == image, (arch, user_class)
            # iPXE's root-path names the disk (sanboot); everyone else's the partition
            assert offer.root_path == ("aoe:e11.0" if user_class else "aoe:e11.0p1"), offer
        if "--mac" in extra:  # the box's other NIC boots the same way
            assert ask(client, 7, None, MAC2).file == "efi/ipxe.efi"
            offer = ask(client, 7, "iPXE", MAC2)
            assert (offer.file, offer.root_path) == (SCRIPT, "aoe:e11.0"), offer
        # any other machine gets none of the box's classes: no file, no root-path
        for arch, user_class in ((0, None), (7, None), (11, None), (7, "iPXE"), (None, None)):
            offer = ask(client, arch, user_class, OTHER)
            assert (offer.file, offer.root_path) == ("", ""), (arch, user_class, offer)
    assert "aoeboot-525400123456-ipxe" in server.log_text()  # Kea's log names the classes


def test_kea_reservation_root_path_outranks_the_classes(tmp_path: Path):
    # Why the Kea form has no reservation, and its header warns of one: a root-path a
    # reservation sets reaches iPXE too, which then cannot attach eX.YpN and never boots
    require_programs("kea-dhcp4")
    root_path = {"name": "root-path", "data": "aoe:e11.0p1", "always-send": True}
    with (
        link() as (nas, client),
        Kea(
            nas,
            "nas0",
            fragment("kea"),
            tmp_path,
            [{"hw-address": MAC, "option-data": [root_path]}],
        ),
    ):
        offer = ask(client, 7, "iPXE")
        assert (offer.file, offer.root_path) == (SCRIPT, "aoe:e11.0p1"), offer


@pytest.mark.parametrize("fmt", ["isc-dhcpd", "dnsmasq", "kea"])
def test_bad_image_names_are_one_line_errors(fmt: str):
    for option, value in (
        ("--efi-image", "a b.efi"),
        ("--bios-image", "x,y"),
        ("--arm64-efi-image", 'q"'),
        ("--script", "s;t"),
    ):
        out = aoeboot(
            "nas-config", "--mac", MAC, "--target", "e11.0", "--format", fmt, option, value
        )
        assert out.returncode == 2 and out.stdout == "", (option, out.stdout)
        assert out.stderr.count("\n") == 1 and f"{option}: {value!r}" in out.stderr, out.stderr
    none = aoeboot(
        "nas-config",
        "--mac",
        MAC,
        "--target",
        "e11.0",
        "--format",
        fmt,
        "--bios-image",
        "",
        "--efi-image",
        "",
    )
    assert none.returncode == 2 and "no iPXE image left" in none.stderr


def test_kea_takes_no_boot_file_longer_than_the_file_field():
    # Kea refuses its whole configuration for a class's boot-file-name over 128 bytes
    for option in ("--script", "--bios-image", "--efi-image", "--arm64-efi-image"):
        long = "d/" + "x" * 127
        out = aoeboot(
            "nas-config", "--mac", MAC, "--target", "e11.0", "--format", "kea", option, long
        )
        assert out.returncode == 2 and out.stdout == "", (option, out.stdout)
        assert out.stderr.splitlines() == [
            f"aoeboot: {option}: {long[:32]!r}... (129 bytes) is longer than the 128 bytes of "
            "the DHCP file field, where the boot file name goes"
        ], out.stderr
        fits = aoeboot(
            "nas-config", "--mac", MAC, "--target", "e11.0", "--format", "kea", option, long[:128]
        )
        assert fits.returncode == 0, fits.stderr
