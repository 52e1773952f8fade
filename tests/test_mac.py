"""MAC addresses: recognised, normalised and written in one place; where they are read."""

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aoeboot import mac, netif
from aoeboot.config import BootConfig, Config, PublishConfig
from aoeboot.errors import AoebootError
from aoeboot.nasconfig import host_tag
from aoeboot.publish import host_name


@given(st.binary(min_size=6, max_size=6))
def test_bytes_round_trip(raw):
    text = mac.from_bytes(raw)
    assert mac.to_bytes(text) == raw
    assert mac.parse(text.upper().replace(":", "-")) == text
    assert mac.from_hexraw(mac.hexraw(text)) == text


def test_forms():
    assert mac.normal("52-54-00-AB-cd-56") == "52:54:00:ab:cd:56"
    assert mac.hexhyp("52:54:00:AB:CD:56") == "52-54-00-ab-cd-56"
    assert mac.hexraw("52-54-00-ab-cd-56") == "525400abcd56"
    assert host_tag("52:54:00:ab:cd:56") == "aoeboot-525400abcd56"
    assert mac.from_hexraw("525400ABCD56") == "52:54:00:ab:cd:56"


@pytest.mark.parametrize(
    "text",
    [
        "eth0",
        "52:54:00:12:34",
        "52:54:00:12:34:5g",
        "525400123456",
        "52:54:00:12:34:56:78",
        "",
        "52:54:00:12:34:56\n",
    ],
)
def test_what_is_not_a_mac(text):
    assert not mac.is_mac(text)
    with pytest.raises(AoebootError, match="invalid MAC address"):
        mac.parse(text)


def _sys_net(root: Path, **addresses: str) -> Path:
    sys_net = root / "sys" / "class" / "net"
    for name, address in addresses.items():
        (sys_net / name).mkdir(parents=True)
        (sys_net / name / "address").write_text(address + "\n")
        (sys_net / name / "flags").write_text("0x1003\n")
    return sys_net


def test_an_interface_address_from_sysfs(tmp_path):
    sys_net = _sys_net(
        tmp_path, eth0="52:54:00:AB:CD:56", ib0="80:00:00:48:fe:80:00:00:00:00:00:00"
    )
    assert netif.address("eth0", sys_net) == "52:54:00:ab:cd:56"
    assert netif.address("ib0", sys_net) is None  # not an Ethernet address
    assert netif.address("nope0", sys_net) is None
    assert netif.resolve(["52-54-00-ab-cd-56"], sys_net) == ["eth0"]


def test_per_host_directory_is_the_boot_mac_hyphenated(tmp_path):
    _sys_net(tmp_path, eth0="52:54:00:ab:cd:56")
    by_name = Config(BootConfig(interfaces=("eth0",)), PublishConfig("/srv/tftp"))
    assert host_name(by_name, tmp_path) == "52-54-00-ab-cd-56"
    by_mac = Config(BootConfig(interfaces=("52:54:00:12:34:56",)), PublishConfig("/srv/tftp"))
    assert host_name(by_mac, tmp_path) == "52-54-00-12-34-56"
