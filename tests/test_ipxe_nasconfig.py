from __future__ import annotations

import json
import os
import stat
import subprocess

import pytest

from aoeboot import ipxe, nasconfig
from aoeboot.errors import AoebootError
from aoeboot.pxearch import Images
from aoeboot.target import Target
from tests.helpers import aoeboot

K1 = ipxe.Published(
    "6.11.10-300.fc41.x86_64", "vmlinuz-a", "initrd-a", "ro root=/dev/etherd/e11.0p1"
)
K0 = ipxe.Published(
    "6.11.4-301.fc41.x86_64", "vmlinuz-b", "initrd-b", "ro root=/dev/etherd/e11.0p1"
)


def test_script_boots_newest_then_previous_then_sanboot():
    script = ipxe.render("52-54-00-12-34-56", [K1, K0], Target(11, 0, 1))
    lines = script.splitlines()
    assert lines[0] == "#!ipxe"
    assert "choose --default k0 --timeout 3000 selected || goto k0" in lines
    k0 = lines.index(":k0")
    assert lines[k0 + 2] == (
        "kernel vmlinuz-a initrd=initrd-a ro root=/dev/etherd/e11.0p1 "
        "BOOTIF=01-${netX/mac:hexhyp} || goto k1"
    )
    assert lines[k0 + 3 : k0 + 5] == ["initrd initrd-a || goto k1", "boot || goto k1"]
    k1 = lines.index(":k1")
    assert lines[k1 + 2].endswith("|| goto sanboot") and lines[k1 + 4] == "boot || goto sanboot"
    # the disk iPXE attached for the DHCP root-path is let go first, or sanboot cannot attach it
    sanboot = lines.index(":sanboot")
    assert lines[sanboot + 2 : sanboot + 5] == [
        "sanunhook --drive 0x80 || goto sanhook",
        ":sanhook",
        "sanboot aoe:e11.0 || goto failed",
    ]


def test_script_with_base_url():
    script = ipxe.render("box", [K1], Target(11, 0, 1), "http://nas/boot/")
    assert "kernel http://nas/boot/vmlinuz-a initrd=initrd-a" in script
    assert "initrd http://nas/boot/initrd-a || goto sanboot" in script


def test_dhcp_fragments_never_send_ipxe_to_ipxe():
    isc = nasconfig.isc_dhcpd("52:54:00:12:34:56", Target(11, 0), "x/boot.ipxe", Images())
    assert 'if exists user-class and option user-class = "iPXE" {' in isc
    inner = isc.split('"iPXE" {')[1].split("} else {")[0]
    assert 'filename "x/boot.ipxe";' in inner and "undionly" not in inner
    assert 'option root-path "aoe:e11.0";' in inner
    dm = nasconfig.dnsmasq("52:54:00:12:34:56", Target(11, 0), "x/boot.ipxe", Images())
    assert (
        "dhcp-boot=tag:aoeboot-525400123456,tag:!ipxe,tag:aoeboot-bios,undionly.kpxe"
        in dm.splitlines()
    )
    assert "dhcp-boot=tag:aoeboot-525400123456,tag:ipxe,x/boot.ipxe" in dm.splitlines()


def test_root_path_is_the_disk_for_ipxe_and_the_partition_for_linux():
    target = Target(11, 0, 1)
    isc = nasconfig.isc_dhcpd("52:54:00:12:34:56", target, "x/boot.ipxe", Images())
    ipxe_part, other = isc.split('"iPXE" {')[1].split("} else {")
    assert 'option root-path "aoe:e11.0";' in ipxe_part  # sanboot takes a disk
    assert 'option root-path "aoe:e11.0p1";' in other  # root=dhcp in the initramfs
    dm = nasconfig.dnsmasq("52:54:00:12:34:56", target, "x/boot.ipxe", Images()).splitlines()
    assert "dhcp-option=tag:aoeboot-525400123456,tag:ipxe,option:root-path,aoe:e11.0" in dm
    assert "dhcp-option=tag:aoeboot-525400123456,tag:!ipxe,option:root-path,aoe:e11.0p1" in dm


def test_nas_config_cli():
    out = aoeboot(
        "nas-config", "--mac", "52-54-00-12-34-56", "--target", "aoe:e11.0", "--format", "dnsmasq"
    )
    assert out.returncode == 0, out.stderr
    assert "dhcp-host=52:54:00:12:34:56,set:aoeboot-525400123456" in out.stdout
    assert "tag:ipxe,52-54-00-12-34-56/boot.ipxe" in out.stdout
    bad = aoeboot("nas-config", "--mac", "eth0", "--target", "e11.0")
    assert bad.returncode == 2 and "invalid MAC address 'eth0'" in bad.stderr


def test_dhcp_fragments_for_a_box_with_two_nics():
    out = aoeboot(
        "nas-config",
        "--mac",
        "52:54:00:12:34:56",
        "--mac",
        "52:54:00:12:34:57",
        "--target",
        "e11.0p1",
        "--format",
        "dnsmasq",
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines.count("dhcp-userclass=set:ipxe,iPXE") == 1
    for tag in ("aoeboot-525400123456", "aoeboot-525400123457"):
        # either NIC may PXE-boot; both get the one script (the publish directory of the first)
        assert f"dhcp-boot=tag:{tag},tag:ipxe,52-54-00-12-34-56/boot.ipxe" in lines
    isc = aoeboot(
        "nas-config",
        "--mac",
        "52:54:00:12:34:56",
        "--mac",
        "52:54:00:12:34:57",
        "--target",
        "e11.0p1",
    )
    assert isc.stdout.count("host aoeboot-52540012345") == 2, isc.stdout


def test_kea_classes_never_send_ipxe_to_ipxe():
    images = Images(efi_arm64="arm64/snp.efi")
    ipxe_class, box, *arches = nasconfig.kea_classes(
        ["52:54:00:12:34:56"], Target(11, 0, 1), "x/boot.ipxe", images
    )
    # iPXE first: Kea takes the boot file and each option from the first class that has one
    assert ipxe_class == {
        "name": "aoeboot-525400123456-ipxe",
        "test": "pkt4.mac == 0x525400123456 and option[77].hex == 'iPXE'",
        "boot-file-name": "x/boot.ipxe",
        "option-data": [
            {"name": "root-path", "code": 17, "data": "aoe:e11.0", "always-send": True}
        ],
    }
    # everyone else of the box: the partition, and no iPXE (so no image) for iPXE
    assert box == {
        "name": "aoeboot-525400123456",
        "test": "pkt4.mac == 0x525400123456 and not member('aoeboot-525400123456-ipxe')",
        "option-data": [
            {"name": "root-path", "code": 17, "data": "aoe:e11.0p1", "always-send": True}
        ],
    }
    assert [(c["name"], c["test"], c["boot-file-name"]) for c in arches] == [
        (
            "aoeboot-525400123456-bios",
            "member('aoeboot-525400123456') and option[93].hex == 0x0000",
            "undionly.kpxe",
        ),
        (
            "aoeboot-525400123456-efi-x86_64",
            "member('aoeboot-525400123456') and (option[93].hex == 0x0007 or "
            "option[93].hex == 0x0009)",
            "snponly.efi",
        ),
        (
            "aoeboot-525400123456-efi-arm64",
            "member('aoeboot-525400123456') and option[93].hex == 0x000b",
            "arm64/snp.efi",
        ),
    ]
    default = nasconfig.kea_classes(["52:54:00:12:34:56"], Target(11, 0), "x", Images())
    assert [c["name"] for c in default][2:] == [
        "aoeboot-525400123456-bios",
        "aoeboot-525400123456-efi-x86_64",
    ]
    option_data = default[1]["option-data"]
    assert isinstance(option_data, list)
    assert option_data[0]["data"] == "aoe:e11.0"  # no partition: the disk


def test_kea_output_is_a_commented_json_object_for_every_nic():
    out = aoeboot(
        "nas-config",
        "--mac",
        "52:54:00:12:34:56",
        "--mac",
        "52-54-00-12-34-57",
        "--target",
        "e11.0p3",
        "--format",
        "kea",
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    header = [line for line in lines if line.startswith("//")]
    assert lines[: len(header)] == header and len(header) <= 6, out.stdout
    assert header[0] == (
        "// aoeboot: Kea DHCPv4 for 52:54:00:12:34:56, 52:54:00:12:34:57, root on aoe:e11.0p3."
    )
    assert '"client-classes" of "Dhcp4"' in header[1]
    document = json.loads("\n".join(lines[len(header) :]))
    assert list(document) == ["client-classes"]
    # one box, one set of classes: either NIC may boot, both get the first one's script
    both = "(pkt4.mac == 0x525400123456 or pkt4.mac == 0x525400123457)"
    classes = document["client-classes"]
    assert [c["name"] for c in classes] == [
        "aoeboot-525400123456-ipxe",
        "aoeboot-525400123456",
        "aoeboot-525400123456-bios",
        "aoeboot-525400123456-efi-x86_64",
    ]
    assert classes[0]["test"] == f"{both} and option[77].hex == 'iPXE'"
    assert classes[0]["boot-file-name"] == "52-54-00-12-34-56/boot.ipxe"
    assert classes[1]["test"].startswith(f"{both} and not ")
    helped = aoeboot("nas-config", "--help")
    assert "kea" in helped.stdout and "Fedora" in helped.stdout


def test_vblade_exports_the_whole_disk_to_the_box_only():
    out = aoeboot(
        "nas-config",
        "--mac",
        "52-54-00-12-34-56",
        "--mac",
        "52:54:00:12:34:57",
        "--mac",
        "52:54:00:12:34:56",
        "--target",
        "aoe:e11.0p3",
        "--format",
        "vblade",
        "--nas-iface",
        "enp3s0",
        "--export",
        "/dev/disk/by-id/ata-WDC_WD40-part1",
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "# aoeboot: export e11.0 on enp3s0 to 52:54:00:12:34:56, 52:54:00:12:34:57 only",
        "# -s: every write is on the NAS's disk before vblade acknowledges it (O_SYNC).",
        "# Check on the NAS: 'ps -o args= -C vblade' shows -s for every export.",
        "vblade -s -m 52:54:00:12:34:56,52:54:00:12:34:57 11 0 enp3s0 "
        "/dev/disk/by-id/ata-WDC_WD40-part1",
    ]


@pytest.mark.parametrize("fmt", ["vblade", "vblade-unit"])
def test_without_sync_is_asked_for_by_name_and_says_what_it_risks(fmt):
    argv = [
        "nas-config",
        "--mac",
        "52:54:00:12:34:56",
        "--target",
        "e11.0p3",
        "--format",
        fmt,
        "--nas-iface",
        "eth0",
        "--export",
        "/dev/vg/box",
    ]
    durable, unsafe = aoeboot(*argv), aoeboot(*argv, "--unsafe-no-sync")
    assert durable.returncode == 0 and unsafe.returncode == 0, (durable.stderr, unsafe.stderr)
    command = [line for line in durable.stdout.splitlines() if "-m 52:54" in line]
    assert len(command) == 1 and " -s -m " in command[0], durable.stdout
    assert " -s " not in unsafe.stdout and "UNSAFE (no -s)" in unsafe.stdout, unsafe.stdout
    assert "power cut" in unsafe.stdout
    helped = aoeboot("nas-config", "--help")
    assert "--unsafe-no-sync" in helped.stdout and "power cut" in helped.stdout


def test_an_export_that_exists_here_must_be_a_file_or_an_unused_block_device(tmp_path):
    image = tmp_path / "box.img"
    image.write_bytes(b"")
    nasconfig.check_export_here(str(image))  # a file: fine
    nasconfig.check_export_here(str(tmp_path / "absent.img"))  # not here: the NAS's business
    for not_a_disk, what in [
        (tmp_path, "neither a regular file nor a block device"),
        ("/dev/null", "neither a regular file nor a block device"),
    ]:
        with pytest.raises(AoebootError, match=what):
            nasconfig.check_export_here(str(not_a_disk))
    disk = tmp_path / "loop7"
    os.mknod(disk, 0o600 | stat.S_IFBLK, os.makedev(7, 7))
    mounts, swaps = tmp_path / "mountinfo", tmp_path / "swaps"
    swaps.write_text("Filename Type Size Used Priority\n")
    mounts.write_text("29 1 254:0 / / rw - ext4 /dev/vda rw\n")
    nasconfig.check_export_here(str(disk), str(mounts), str(swaps))  # unused: fine
    mounts.write_text(
        "29 1 254:0 / / rw - ext4 /dev/vda rw\n40 29 7:7 / /srv/box rw - ext4 /dev/loop7 rw\n"
    )
    with pytest.raises(AoebootError, match="is mounted here on /srv/box"):
        nasconfig.check_export_here(str(disk), str(mounts), str(swaps))
    mounts.write_text("")
    swaps.write_text(f"Filename Type Size Used Priority\n{disk} partition 8 0 -2\n")
    with pytest.raises(AoebootError, match="in use as swap here"):
        nasconfig.check_export_here(str(disk), str(mounts), str(swaps))


def test_the_mounted_root_of_this_machine_is_refused_as_an_export():
    root = subprocess.run(["findmnt", "-no", "SOURCE", "/"], capture_output=True, text=True)
    device = root.stdout.strip()
    if not device.startswith("/dev/") or not stat.S_ISBLK(os.stat(device).st_mode):
        pytest.skip(f"/ is on {device!r} here, no block device")
    out = aoeboot(
        "nas-config",
        "--mac",
        "52:54:00:12:34:56",
        "--target",
        "e11.0p3",
        "--format",
        "vblade",
        "--nas-iface",
        "eth0",
        "--export",
        device,
    )
    assert out.returncode == 2 and out.stdout == "", out.stdout
    assert len(out.stderr.splitlines()) == 1 and "is mounted here on /" in out.stderr


BAD_VBLADE: list[tuple[dict[str, str | list[str]], str]] = [
    ({"--export": "/srv/aoe/my box.img"}, "invalid export path '/srv/aoe/my box.img'"),
    ({"--export": "srv/box.img"}, "invalid export path 'srv/box.img'"),
    ({"--export": "/srv/aoe/../box.img"}, "invalid export path '/srv/aoe/../box.img'"),
    ({"--export": "/srv/aoe/"}, "invalid export path '/srv/aoe/'"),
    ({"--export": "/srv/$HOME"}, "invalid export path '/srv/$HOME'"),
    ({"--export": "/srv/%n"}, "invalid export path '/srv/%n'"),
    ({"--export": "/"}, "invalid export path '/'"),
    ({"--nas-iface": "52:54:00:aa:00:01"}, "invalid interface name '52:54:00:aa:00:01'"),
    ({"--nas-iface": "eth0;reboot"}, "invalid interface name 'eth0;reboot'"),
    ({"--nas-iface": ""}, "invalid interface name ''"),
    ({"--mac": "ff:ff:ff:ff:ff:ff"}, "'ff:ff:ff:ff:ff:ff' is a multicast or null address"),
    ({"--mac": "00:00:00:00:00:00"}, "'00:00:00:00:00:00' is a multicast or null address"),
    ({"--mac": "52:54:00:12:34"}, "invalid MAC address '52:54:00:12:34'"),
    (
        {"--mac": [f"52:54:00:00:00:{n:02x}" for n in range(33)]},
        "33 MACs given: vblade takes at most 32",
    ),
]


@pytest.mark.parametrize(
    "bad, message", BAD_VBLADE, ids=[f"{next(iter(b))}-{i}" for i, (b, _) in enumerate(BAD_VBLADE)]
)
@pytest.mark.parametrize("fmt", ["vblade", "vblade-unit"])
def test_bad_vblade_input_is_one_line_exit_2(fmt, bad, message):
    given = {"--mac": "52:54:00:12:34:56", "--nas-iface": "eth0", "--export": "/dev/vg/box", **bad}
    argv = ["nas-config", "--target", "e11.0", "--format", fmt]
    for option, values in given.items():
        for value in [values] if isinstance(values, str) else values:
            argv += [option, value]
    out = aoeboot(*argv)
    assert out.returncode == 2 and out.stdout == "", out.stdout
    assert len(out.stderr.splitlines()) == 1 and message in out.stderr, out.stderr


def test_vblade_without_its_inputs_says_what_it_needs():
    out = aoeboot(
        "nas-config",
        "--mac",
        "52:54:00:12:34:56",
        "--target",
        "e11.0",
        "--format",
        "vblade",
        "--export",
        "/dev/vg/box",
    )
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.startswith("aoeboot: --format vblade needs --nas-iface IF and --export PATH")


def test_fragments_pick_the_image_by_client_architecture():
    images = Images(efi_x86_64="ipxe.efi", efi_arm64="arm64/snponly.efi")
    dm = nasconfig.dnsmasq("52:54:00:12:34:56", Target(11, 0), "x/boot.ipxe", images).splitlines()
    assert "dhcp-match=set:aoeboot-bios,option:client-arch,0" in dm
    assert {
        "dhcp-match=set:aoeboot-efi-x86_64,option:client-arch,7",
        "dhcp-match=set:aoeboot-efi-x86_64,option:client-arch,9",
        "dhcp-match=set:aoeboot-efi-arm64,option:client-arch,11",
    } <= set(dm)
    assert "dhcp-boot=tag:aoeboot-525400123456,tag:!ipxe,tag:aoeboot-efi-x86_64,ipxe.efi" in dm
    default = nasconfig.dnsmasq("52:54:00:12:34:56", Target(11, 0), "x/boot.ipxe", Images())
    assert "snponly.efi" in default and "client-arch,11" not in default  # arm64 only if named
    isc = nasconfig.isc_dhcpd("52:54:00:12:34:56", Target(11, 0), "x/boot.ipxe", images)
    assert "if option pxe-system-type = 00:00 {" in isc
    assert "} elsif option pxe-system-type = 00:07 or option pxe-system-type = 00:09 {" in isc
    assert '} elsif option pxe-system-type = 00:0b {\n      filename "arm64/snponly.efi";' in isc
    assert isc.count("{") == isc.count("}")
