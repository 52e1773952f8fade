"""dracut/59aoe/aoeboot-rename.sh, udev's RUN on a NIC's add or rename, run as udev runs it (the
old and new names in its environment) on a copy whose driver list and kmsg are files here."""

import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent.parent / "dracut/59aoe/aoeboot-rename.sh"
IFLIST = "/sys/module/aoe/parameters/aoe_iflist"


def run(tmp_path: Path, iflist: str, env: dict[str, str]) -> tuple[str, str]:
    """The driver list and the kernel log line after the script ran on `iflist`."""
    listed, kmsg = tmp_path / "aoe_iflist", tmp_path / "kmsg"
    listed.write_text(iflist + "\n")
    kmsg.write_text("")
    text = SCRIPT.read_text()
    assert IFLIST in text and "/dev/kmsg" in text
    script = tmp_path / "aoeboot-rename"
    script.write_text(text.replace(IFLIST, str(listed)).replace("/dev/kmsg", str(kmsg)))
    subprocess.run(["sh", str(script)], env=env, check=True)
    return listed.read_text().strip(), kmsg.read_text().strip()


@pytest.mark.parametrize(
    "iflist, env, after, said",
    [
        # udev renamed eth0 (add): aoeboot-up's rule had put the new name in already
        (
            "eth0 ens2",
            {"INTERFACE_OLD": "eth0", "INTERFACE": "ens2"},
            "ens2",
            "aoeboot: eth0 is now ens2: aoe_iflist is 'ens2'",
        ),
        # no rule (an older initramfs): the new name takes the old one's place
        (
            "eth0 eth1",
            {"INTERFACE_OLD": "eth0", "INTERFACE": "ens2"},
            "ens2 eth1",
            "aoeboot: eth0 is now ens2: aoe_iflist is 'ens2 eth1'",
        ),
        # the kernel renamed it (move, `ip link set name`): the old name from DEVPATH_OLD
        (
            "ens2",
            {"DEVPATH_OLD": "/devices/pci0000:00/0000:00:02.0/net/ens2", "INTERFACE": "aoex0"},
            "aoex0",
            "aoeboot: ens2 is now aoex0: aoe_iflist is 'aoex0'",
        ),
        # an add with no rename, after the rule added the name once more
        (
            "ens2 ens2 ens4",
            {"INTERFACE": "ens2"},
            "ens2 ens4",
            "aoeboot: aoe_iflist is 'ens2 ens4'",
        ),
        # nothing to do: a NIC AoE does not use, and the empty list (every interface)
        ("ens2", {"INTERFACE_OLD": "eth1", "INTERFACE": "ens4"}, "ens2", ""),
        ("", {"INTERFACE_OLD": "eth0", "INTERFACE": "ens2"}, "", ""),
    ],
)
def test_the_list_follows_the_rename_once_each(tmp_path, iflist, env, after, said):
    assert run(tmp_path, iflist, env) == (after, said)
