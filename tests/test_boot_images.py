"""The initramfs images that really boot: those the entries name (systemd-boot's on the ESP),
and the AoE options baked into them whatever PATH dracut or rpm runs us with (the issue "The
box's own tools never hurt the NAS, never lie about it, and never fall over on odd input",
items 9 and 10)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from aoeboot import initramfs
from aoeboot.errors import AoebootError
from tests.helpers import require_root
from tests.test_odd_input import AOE_IMAGE, KVER, bare_root, cli, fake_dracut, newc

REPO = Path(__file__).resolve().parent.parent
MACHINE_ID = "a0e0b0070000400080000000000000a0"
NO_AOE = newc({"usr/lib/modules/x/e1000.ko": b""})
# the PATHs our scripts are run with: dracut's own, and rpm's for a kernel package's scriptlets
DRACUT_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
RPM_PATH = "/sbin:/bin:/usr/sbin:/usr/bin"


def systemd_boot_root(sysroot: Callable[..., Path]) -> tuple[Path, Path]:
    """A root laid out as kernel-install's bls layout with systemd-boot: the entry on the ESP
    (/efi) names /MACHINE-ID/KVER/initrd, which lacks AoE; /boot has an image with it that no
    entry boots. Returns (root, the ESP's initrd)."""
    root = bare_root(sysroot)
    shutil.rmtree(root / "boot/loader")
    (root / "boot" / f"initramfs-{KVER}.img").write_bytes(AOE_IMAGE)
    esp_initrd = root / "efi" / MACHINE_ID / KVER / "initrd"
    esp_initrd.parent.mkdir(parents=True)
    esp_initrd.write_bytes(NO_AOE)
    (root / "efi/loader/entries").mkdir(parents=True)
    (root / "efi/loader/entries" / f"{MACHINE_ID}-{KVER}.conf").write_text(
        f"title Debian\nversion {KVER}\nlinux /{MACHINE_ID}/{KVER}/linux\n"
        f"initrd /{MACHINE_ID}/{KVER}/initrd\noptions ro quiet\n"
    )
    (root / "etc/aoeboot").mkdir(parents=True)
    (root / "etc/aoeboot/aoeboot.conf").write_text("[boot]\ntarget = e11.0p1\n")
    return root, esp_initrd


def initramfs_checks(root: Path) -> list[tuple[str, str]]:
    out = cli("status", "--root", str(root), "--json")
    return [
        (c["level"], c["message"])
        for c in json.loads(out.stdout)["checks"]
        if c["name"] == "initramfs"
    ]


def test_systemd_boot_the_initrd_the_entry_names_is_built_and_checked(sysroot, monkeypatch):
    """Before: install-entry built /boot/initramfs-KVER.img, which no entry boots, said
    "nothing to change" on a rerun, and status kept failing: a loop."""
    root, esp_initrd = systemd_boot_root(sysroot)
    before = initramfs_checks(root)
    assert [level for level, _ in before] == ["FAIL"], before
    assert f"efi/{MACHINE_ID}/{KVER}/initrd lacks the aoe driver" in before[0][1], before

    calls: list[list[str]] = []
    monkeypatch.setattr(initramfs, "run", fake_dracut(calls))
    result = cli("install-entry", "--target", "e11.0p1", "--root", str(root))
    assert result.exit_code == 0, result.output
    assert (
        f"built efi/{MACHINE_ID}/{KVER}/initrd (aoe driver, aoeboot dracut module missing)"
        in result.stdout
    ), result.stdout
    assert len(calls) == 1 and initramfs.missing(esp_initrd) == []
    assert "root=/dev/etherd/e11.0p1" in initramfs.baked_options(esp_initrd).options

    again = cli("install-entry", "--target", "e11.0p1", "--root", str(root), "--json")
    assert json.loads(again.stdout)["changed"] is False and len(calls) == 1, again.stdout
    after = initramfs_checks(root)
    assert [level for level, _ in after] == ["OK", "OK"], after
    assert f"efi/{MACHINE_ID}/{KVER}/initrd has the aoe driver and our module" in after[0][1]
    assert after[1][1].endswith("carries the AoE options itself"), after


def test_an_entry_naming_an_initrd_that_is_not_there_fails_though_boot_has_one(sysroot):
    root, esp_initrd = systemd_boot_root(sysroot)
    esp_initrd.unlink()
    checks = initramfs_checks(root)
    assert [level for level, _ in checks] == ["FAIL"], checks
    assert "which the entry of kernel" in checks[0][1] and "does not exist" in checks[0][1]


def test_a_build_that_does_not_carry_the_options_writes_nothing(tmp_path, monkeypatch):
    """Our own builds hand the module the options (AOEBOOT_INITRAMFS_OPTIONS) and check the image
    carries them: a module that ignores them (an older one) leaves nothing behind."""
    out = tmp_path / "boot" / f"initramfs-{KVER}.img"
    monkeypatch.setattr(initramfs, "run", fake_dracut([], bakes=False))
    with pytest.raises(AoebootError, match="without the AoE options in /etc/cmdline.d"):
        initramfs.build(KVER, out, baked=["rd.aoe=1", "root=/dev/etherd/e11.0p1"])
    assert list(out.parent.iterdir()) == []


def without_path(script: str, path: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`script` (bash) with PATH=`path`, in a mount namespace whose /usr/local/bin holds only an
    aoeboot that prints its arguments (as pip installs it there, outside both PATHs)."""
    require_root()
    local = tmp_path / "local-bin"
    local.mkdir()
    (local / "aoeboot").write_text('#!/bin/sh\necho "aoeboot $*"\n')
    (local / "aoeboot").chmod(0o755)
    os.makedirs("/usr/local/bin", exist_ok=True)
    inner = f'mount --bind {local} /usr/local/bin && PATH={path} exec bash -c "$0"'
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", inner, script],
        capture_output=True,
        text=True,
        cwd=REPO,
    )


def test_the_module_bakes_with_aoeboot_outside_dracuts_path(tmp_path):
    """dracut runs install() with PATH=/usr/sbin:/usr/bin:/sbin:/bin: pip's /usr/local/bin/aoeboot
    was never found, and the image silently carried no options."""
    initdir = tmp_path / "initdir"
    script = (
        f'initdir={initdir}; dwarn() {{ echo "W: $*"; }}; '
        ". dracut/59aoe/module-setup.sh; bake_cmdline; cat $initdir/etc/cmdline.d/*"
    )
    done = without_path(script, DRACUT_PATH, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "aoeboot cmdline --initramfs\n", done.stdout + done.stderr


def test_what_aoeboot_hands_the_module_is_baked_without_running_it(tmp_path):
    initdir = tmp_path / "initdir"
    failing = tmp_path / "bin"
    failing.mkdir()
    (failing / "aoeboot").write_text("#!/bin/sh\necho 'aoeboot ran' >&2; exit 3\n")
    (failing / "aoeboot").chmod(0o755)
    script = (
        f"initdir={initdir}; AOEBOOT_INITRAMFS_OPTIONS='rd.aoe=1 root=/dev/etherd/e1.2p3'; "
        f"PATH={failing}:$PATH; . dracut/59aoe/module-setup.sh; bake_cmdline; "
        "cat $initdir/etc/cmdline.d/50-aoeboot.conf"
    )
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=REPO)
    assert done.stderr == "", done.stderr
    assert done.stdout == "rd.aoe=1 root=/dev/etherd/e1.2p3\n", done.stdout + done.stderr


def test_the_plugin_runs_aoeboot_outside_rpms_path(tmp_path):
    done = without_path(
        "sh kernel-install.d/60-aoeboot.install add 6.1 /boot/x /boot/vmlinuz", RPM_PATH, tmp_path
    )
    assert done.stdout == "aoeboot kernel-install add 6.1 /boot/x /boot/vmlinuz\n", (
        done.stdout + done.stderr
    )
