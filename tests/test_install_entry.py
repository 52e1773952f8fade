"""install-entry on a prepared installed root: files written, entries fixed, idempotent."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import aoeboot

ENTRY = ("title Fedora\nversion {kver}\nlinux /vmlinuz-{kver}\n"
         "options root=UUID=abcd ro rhgb quiet\n")


def installed_root(tmp_path: Path, kver: str, initrd: Path) -> Path:
    root = tmp_path / "sysimage"
    (root / "lib/modules" / kver).mkdir(parents=True)
    (root / "lib/modules" / kver / "modules.dep").write_text("")
    (root / "boot/loader/entries").mkdir(parents=True)
    shutil.copy(initrd, root / "boot" / f"initramfs-{kver}.img")
    (root / "boot/loader/entries" / f"fedora-{kver}.conf").write_text(ENTRY.format(kver=kver))
    (root / "etc/kernel").mkdir(parents=True)
    (root / "etc/kernel/cmdline").write_text("root=UUID=abcd ro rhgb quiet\n")
    return root


def test_install_entry_sets_everything_up_once(tmp_path, aoe_initrd):
    kver, initrd = aoe_initrd
    root = installed_root(tmp_path, kver, initrd)
    out = aoeboot("install-entry", "--target", "e11.0p1", "--iface", "eth0", "--root", str(root))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "wrote /etc/aoeboot/aoeboot.conf",
        "set the AoE options in /etc/kernel/cmdline",
        "wrote /etc/dracut.conf.d/90-aoeboot.conf",
        f"set the AoE options in boot/loader/entries/fedora-{kver}.conf",
    ]
    assert (root / "etc/kernel/cmdline").read_text() == (
        "ro rhgb quiet root=/dev/etherd/e11.0p1 rd.aoe.iface=eth0\n")
    assert 'add_dracutmodules+=" aoe "' in (root / "etc/dracut.conf.d/90-aoeboot.conf").read_text()
    assert "target = e11.0p1" in (root / "etc/aoeboot/aoeboot.conf").read_text()
    entry = (root / "boot/loader/entries" / f"fedora-{kver}.conf").read_text()
    assert entry == ENTRY.format(kver=kver).replace(
        "options root=UUID=abcd ro rhgb quiet",
        "options ro rhgb quiet root=/dev/etherd/e11.0p1 rd.aoe.iface=eth0")

    again = aoeboot("install-entry", "--target", "e11.0p1", "--root", str(root), "--json")
    assert again.returncode == 0, again.stderr
    assert again.stdout.replace(" ", "").replace("\n", "") == '{"changed":false,"changes":[]}'


def test_install_entry_without_target_on_a_root_not_on_aoe(tmp_path):
    root = tmp_path / "sysimage"
    root.mkdir()
    out = aoeboot("install-entry", "--root", str(root))
    assert out.returncode == 2
    assert out.stderr.strip() == (f"aoeboot: {root} is not mounted from an AoE disk "
                                  "(name the root partition with --target eX.YpN)")
    assert list(root.iterdir()) == []  # nothing written


@pytest.mark.parametrize("target, message", [("e65535.0p1", "shelf 65535 out of range"),
                                             ("sda1", "invalid AoE target 'sda1'")])
def test_bad_target(tmp_path, target, message):
    out = aoeboot("install-entry", "--target", target, "--root", str(tmp_path))
    assert out.returncode == 2 and message in out.stderr
    assert list(tmp_path.iterdir()) == []
