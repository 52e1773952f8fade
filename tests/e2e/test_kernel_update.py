"""A kernel update on the running box, through the package manager: the installed system starts
on Debian 12's kernel 6.1; on the box, over AoE, `dpkg -i` brings Debian 13's 6.12, whose
package scripts run `kernel-install add` as Fedora's kernel-core does (aoelab's model of them:
Debian's own only run dracut from /etc/kernel/postinst.d, which is taken out so the model is
the one path, as on Fedora). Our plugin makes the new kernel boot from AoE and publishes it;
the next boot, through iPXE from the NAS, comes up on 6.12; purging 6.1 unpublishes it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from aoelab import datadisk, debtree, fsck, installed, kernelhooks, sysimage
from tests.helpers import require_programs, require_root

pytestmark = [pytest.mark.vm, pytest.mark.dracut]

DEBS = "/var/cache/aoelab-debs"
UPDATE_TIMEOUT = 1800  # dracut inside a TCG guest, over AoE


def fedora_kernel_packaging(target: Path) -> None:
    """Kernel packages that call kernel-install (as Fedora's do), and the new kernel's packages
    on the box, as a mirror would serve them."""
    kernelhooks.add_kernel_install_hooks(target)
    (target / "etc/kernel/postinst.d/dracut").unlink()
    # dracut's default zstd -15 of the 79 MB image takes 10 s of one core here, and minutes of
    # the TCG guest's update; -3 takes 0.2 s for a 3 % larger image. No part of what is tested.
    conf = target / "etc/dracut.conf.d/90-aoelab-tcg.conf"
    conf.parent.mkdir(exist_ok=True)
    conf.write_text('compress="zstd -3 -q -T0"\n')
    debs = target / DEBS.lstrip("/")
    debs.mkdir(parents=True)
    for deb in debtree.kernel_debs(debtree.SUITE).debs:
        shutil.copy(deb, debs)


def manifest(box: installed.Box) -> list[str]:
    found = list((box.nas / "aoeboot").glob("*/manifest.json"))
    assert len(found) == 1, found
    return [k["kver"] for k in json.loads(found[0].read_text())["kernels"]]


def test_kernel_update_on_the_running_box(tmp_path):
    require_root()
    require_programs("mmdebstrap", "qemu-system-x86_64", "vblade", "btrfs", "dnsmasq")
    new = debtree.kernel_debs(debtree.SUITE).version
    box = installed.install_box(
        tmp_path / "box", kernel=debtree.OLD_SUITE, prepare=fedora_kernel_packaging
    )
    old = box.kver
    assert old.startswith("6.1.") and new.startswith("6.12."), (old, new)
    assert manifest(box) == [old]
    with sysimage.mounted(box.disk) as target:
        installed.write_probe(
            target,
            {
                "update": ["sh", "-c", f"dpkg -i {DEBS}/*.deb 2>&1 | tail -n 20"],
                "entries": ["sh", "-c", "grep -H . /boot/loader/entries/*.conf"],
                "status": ["aoeboot", "status", "--json"],
            },
            mounts=[datadisk.DATA_MOUNTPOINT],
        )
        entry = installed.read_entry(target, old, tmp_path)

    first = installed.boot(
        box, tmp_path / "update", entry=entry, options=entry.options, timeout=UPDATE_TIMEOUT
    )
    assert first.done, first.console[-5000:]
    assert first.steps["update"].rc == 0, first.steps["update"].out
    entries = first.steps["entries"].out
    assert f"initrd /initramfs-{new}.img" in entries, entries
    assert f"root=/dev/etherd/{installed.TARGET}" in entries.split(f"{new}.conf:options")[1]
    status = json.loads(first.steps["status"].out)
    assert first.steps["status"].rc == 0 and status["next_boot_ok"], first.steps["status"].out
    assert first.exit_code == 0
    assert manifest(box) == [new, old]  # published, newest first; the old one is the fallback

    # the next boot: iPXE from the NAS, on the new kernel; then the old kernel goes
    with sysimage.mounted(box.disk) as target:
        installed.write_probe(
            target,
            {
                "uname": ["uname", "-r"],
                "purge": ["sh", "-c", f"dpkg --purge linux-image-{old} 2>&1 | tail -n 20"],
                "status": ["aoeboot", "status", "--json"],
            },
            mounts=[datadisk.DATA_MOUNTPOINT],
        )
    second = installed.boot(box, tmp_path / "next", netboot=True)
    assert second.done, second.console[-5000:]
    assert second.steps["uname"].out.strip() == new
    assert second.steps["purge"].rc == 0, second.steps["purge"].out
    assert second.steps["status"].rc == 0, second.steps["status"].out
    assert second.exit_code == 0
    assert manifest(box) == [new]  # unpublished
    assert not [p for p in (box.nas / "aoeboot").rglob(f"*{old}*")]
    for where, check in fsck.fsck(box.disk).items():
        assert check.clean, f"{where}: {check.output[-2000:]}"
