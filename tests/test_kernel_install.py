"""The plugin under the real kernel-install (systemd 252), with real dracut and lsinitrd."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from aoeboot import initramfs
from aoelab import dracutdir
from aoelab.kernel import installed_kernel
from tests.helpers import REPO, aoeboot, require_programs, require_root

PLUGIN = REPO / "kernel-install.d" / "60-aoeboot.install"
SYSTEM_PLUGINS = Path("/usr/lib/kernel/install.d")
MACHINE_ID = "0123456789abcdef0123456789abcdef"
USER_CMDLINE = "quiet root=/dev/sda1 console=ttyS0 splash"
CONFIG = "[boot]\ntarget = e11.0p1\ninterfaces = eth0\n"


@pytest.fixture(scope="module")
def kernel():
    require_root()
    require_programs("kernel-install", "dracut", "lsinitrd")
    found = installed_kernel()
    if found is None:
        pytest.fail("no installed kernel with aoe.ko: install linux-image-amd64")
    return found


@pytest.fixture(scope="module")
def dracut_base(tmp_path_factory):
    return dracutdir.overlay(tmp_path_factory.mktemp("dracutbase"))


@pytest.fixture(scope="module")
def good_initrd(aoe_initrd):
    """A small initramfs with aoe.ko and our module (what a dracut with our drop-in makes)."""
    return aoe_initrd[1]


class Setup:
    def __init__(self, tmp: Path, dracut_base: Path, plugins, root: Path | None = None):
        self.boot = tmp / "boot"
        self.conf = tmp / "conf"
        self.bin = tmp / "bin"
        # The system root aoeboot looks at (the sysroot fixture's, or an empty one): no
        # /boot/initrd.img-* there.
        self.root = root or tmp / "root"
        self.count = tmp / "dracut-runs"
        for d in (self.boot, self.conf, self.bin):
            d.mkdir()
        self.root.mkdir(exist_ok=True)
        (self.conf / "install.conf").write_text("layout=bls\n")
        (self.conf / "cmdline").write_text(USER_CMDLINE + "\n")
        (self.conf / "aoeboot.conf").write_text(CONFIG)
        # Counting dracut runs: a wrapper that records each call (with whether Debian's dracut
        # would run its post-update hooks) and execs the real dracut.
        wrapper = self.bin / "dracut"
        wrapper.write_text(
            f'#!/bin/sh\necho "run:${{NO_POST_UPDATE_HOOKS:-hooks}}" >> '
            f'{self.count}\nexec /usr/bin/dracut "$@"\n'
        )
        wrapper.chmod(0o755)
        self.env = {
            **os.environ,
            "PATH": f"{self.bin}:{Path(sys.executable).parent}:{os.environ['PATH']}",
            "BOOT_ROOT": str(self.boot),
            "KERNEL_INSTALL_CONF_ROOT": str(self.conf),
            "KERNEL_INSTALL_MACHINE_ID": MACHINE_ID,
            "MACHINE_ID": MACHINE_ID,
            "KERNEL_INSTALL_PLUGINS": " ".join(str(p) for p in plugins),
            "dracutbasedir": str(dracut_base),
            "AOEBOOT_ROOT": str(self.root),
            "PYTHONPATH": str(REPO),  # this checkout's aoeboot, whatever the venv installed
        }

    def kernel_install(self, *args, verbose=False):
        # kernel-install sets KERNEL_INSTALL_VERBOSE for its plugins from its own -v
        argv = ["kernel-install", *(["-v"] if verbose else []), *args]
        return subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=600)

    @property
    def dracut_runs(self) -> int:
        return len(self.dracut_calls)

    @property
    def dracut_calls(self) -> list[str]:
        """Each dracut run: "run:1" without post-update hooks, "run:hooks" with them."""
        return self.count.read_text().split() if self.count.exists() else []

    def entry(self, kver):
        return self.boot / "loader/entries" / f"{MACHINE_ID}-{kver}.conf"

    def files(self):
        # (kernel-install itself makes the entry directory for layout bls)
        return sorted(str(p.relative_to(self.boot)) for p in self.boot.rglob("*") if not p.is_dir())


def with_loaderentry():
    # 50-depmod would write to the real /lib/modules and Debian's 85-initrd copies the real
    # /boot/initrd.img-KVER: leave them out.
    return [PLUGIN, SYSTEM_PLUGINS / "90-loaderentry.install"]


def test_add_builds_once_writes_the_entry_and_remove_undoes_it(tmp_path, kernel, dracut_base):
    s = Setup(tmp_path, dracut_base, with_loaderentry())
    out = s.kernel_install("add", kernel.version, str(kernel.image))
    assert out.returncode == 0, out.stderr
    assert out.stdout == ""  # silent unless verbose
    assert s.dracut_runs == 1  # Debian's kernel-install has no initrd generator: ours, once
    # Debian's dracut would hand its post-update hooks our temporary name: systemd-boot's runs
    # kernel-install again with it, which copies it to the ESP and runs us again (recursively)
    assert s.dracut_calls == ["run:1"]
    entry = s.entry(kernel.version).read_text()
    options = next(line for line in entry.splitlines() if line.startswith("options")).split()[1:]
    assert options[:3] == ["quiet", "console=ttyS0", "splash"]  # the user's, kept in order
    assert "root=/dev/sda1" not in options
    assert "root=/dev/etherd/e11.0p1" in options and "rd.aoe.iface=eth0" in options
    entry_dir = s.boot / MACHINE_ID / kernel.version
    assert initramfs.missing(entry_dir / "initrd") == []  # aoe.ko and parse-aoe.sh inside
    assert (s.conf / "cmdline").read_text() == (
        "quiet console=ttyS0 splash root=/dev/etherd/e11.0p1 rd.aoe.iface=eth0\n"
    )

    out = s.kernel_install("remove", kernel.version)
    assert out.returncode == 0, out.stderr
    assert not s.entry(kernel.version).exists()
    assert not entry_dir.exists()
    assert (s.conf / "aoeboot.conf").read_text() == CONFIG  # the config is not ours to remove


def test_good_initrd_is_verified_not_rebuilt_and_layout_other_writes_no_entry(
    tmp_path, kernel, dracut_base, good_initrd
):
    s = Setup(tmp_path, dracut_base, with_loaderentry())
    (s.conf / "install.conf").write_text("layout=other\n")
    out = s.kernel_install("add", kernel.version, str(kernel.image), str(good_initrd), verbose=True)
    assert out.returncode == 0, out.stderr
    assert s.dracut_runs == 0
    assert not (s.boot / "loader").exists()


def test_unrelated_host_is_left_alone(tmp_path, kernel, dracut_base):
    s = Setup(tmp_path, dracut_base, [PLUGIN])
    (s.conf / "aoeboot.conf").unlink()
    out = s.kernel_install("add", kernel.version, str(kernel.image), verbose=True)
    assert out.returncode == 0, out.stderr
    assert "this host does not boot from AoE" in out.stdout
    assert s.dracut_runs == 0 and s.files() == []
    assert (s.conf / "cmdline").read_text() == USER_CMDLINE + "\n"


def test_read_only_boot_is_a_clear_error_and_nothing_half_written(
    tmp_path, kernel, dracut_base, good_initrd
):
    s = Setup(tmp_path, dracut_base, [PLUGIN])
    entries = s.boot / "loader/entries"
    entries.mkdir(parents=True)
    grub_entry = entries / "fedora-grub.conf"  # what Fedora's 20-grub.install writes before us
    original = (
        f"title Fedora\nversion {kernel.version}\nlinux /vmlinuz\noptions root=/dev/sda1 ro\n"
    )
    grub_entry.write_text(original)
    (s.boot / MACHINE_ID / kernel.version).mkdir(parents=True)  # else kernel-install fails first
    subprocess.run(["mount", "--bind", str(s.boot), str(s.boot)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(s.boot)], check=True)
        out = s.kernel_install("add", kernel.version, str(kernel.image), str(good_initrd))
    finally:
        subprocess.run(["umount", str(s.boot)], check=True)
    assert out.returncode != 0 and out.returncode != 77
    assert f"aoeboot: cannot write {grub_entry}: read-only file system" in out.stderr
    assert grub_entry.read_text() == original
    assert sorted(p.name for p in entries.iterdir()) == ["fedora-grub.conf"]


@pytest.mark.parametrize(
    "kver, message",
    [
        ("../x", "invalid kernel version '../x'"),
        ("a/b", "invalid kernel version 'a/b'"),
        ("", "invalid kernel version ''"),
    ],
)
def test_malformed_kver(tmp_path, kver, message):
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "aoeboot.conf").write_text(CONFIG)
    env = {**os.environ, "KERNEL_INSTALL_CONF_ROOT": str(conf)}
    out = aoeboot("kernel-install", "add", kver, str(tmp_path / "e"), "/boot/vmlinuz", env=env)
    assert out.returncode == 2
    assert out.stderr.strip() == f"aoeboot: {message} (must be one plain file name)"


def test_malformed_cmdline_file_and_config(tmp_path):
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "aoeboot.conf").write_text(CONFIG)
    (conf / "cmdline").write_text('quiet acpi="broken\n')
    env = {**os.environ, "KERNEL_INSTALL_CONF_ROOT": str(conf)}
    out = aoeboot(
        "kernel-install", "add", "6.1.0-1-amd64", str(tmp_path / "e"), "/nonexistent", env=env
    )
    assert out.returncode == 2
    assert out.stderr.strip() == f"aoeboot: {conf / 'cmdline'}: unterminated quote in command line"
    (conf / "aoeboot.conf").write_text("[boot]\ntarget = e11.0p1\ntimeout = never\n")
    out = aoeboot(
        "kernel-install", "add", "6.1.0-1-amd64", str(tmp_path / "e"), "/nonexistent", env=env
    )
    assert out.returncode == 2
    assert out.stderr.strip().startswith(f"aoeboot: {conf / 'aoeboot.conf'}:3: timeout:")
    assert len(out.stderr.strip().splitlines()) == 1


def test_unreachable_nas_never_fails_the_kernel_install(
    tmp_path, sysroot, kernel, dracut_base, good_initrd
):
    nas = tmp_path / "nas"
    nas.mkdir()
    root = sysroot(
        config=CONFIG + f"[publish]\ndestination = {nas}\n", nics={"eth0": "52:54:00:12:34:56"}
    )
    s = Setup(tmp_path, dracut_base, [PLUGIN], root)
    (s.conf / "aoeboot.conf").unlink()  # read from the system root, as `aoeboot publish` does
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", str(nas)], check=True)
    try:
        out = s.kernel_install("add", kernel.version, str(kernel.image), str(good_initrd))
        assert out.returncode == 0, out.stderr
        assert "recorded as pending" in out.stderr  # warned on stderr (and the journal)
        state = json.loads((s.root / "var/lib/aoeboot/publish.json").read_text())
        assert state["state"] == "pending" and state["pending"][0]["kver"] == kernel.version
        subprocess.run(["mount", "-o", "remount,rw,size=200m", str(nas)], check=True)
        done = aoeboot("publish", "--root", str(s.root))
        assert done.returncode == 0, done.stderr
        assert f"published ({nas}): {kernel.version}; nothing pending" in done.stdout
        # the per-host directory is eth0's MAC, as `nas-config --mac` names it
        script = nas / "52-54-00-12-34-56" / "boot.ipxe"
        assert f"echo aoeboot: booting {kernel.version}" in script.read_text()
    finally:
        subprocess.run(["umount", str(nas)], check=True)


def plugin_env(s: Setup, **extra: str) -> dict[str, str]:
    """The environment kernel-install gives the plugin, for calling it directly with settings
    this host's kernel-install (252) never passes (staging area, image type, layout other)."""
    return {
        **s.env,
        "KERNEL_INSTALL_LAYOUT": "bls",
        "KERNEL_INSTALL_BOOT_ROOT": str(s.boot),
        **extra,
    }


def run_plugin(s: Setup, env, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PLUGIN), *args], env=env, capture_output=True, text=True, timeout=600
    )


def test_layout_other_builds_where_grub_looks_and_fixes_grubs_entry(
    tmp_path, sysroot, kernel, dracut_base
):
    """Fedora without layout=bls: 20-grub.install wrote /boot/loader/entries/...; the staging
    area is deleted on exit and never read for `other`, so the initramfs goes to /boot."""
    name = f"{MACHINE_ID}-{kernel.version}.conf"
    root = sysroot(
        entries={
            name: f"title Fedora\nversion {kernel.version}\nlinux /vmlinuz-"
            f"{kernel.version}\ninitrd /initramfs-{kernel.version}.img\n"
            "options root=UUID=1234 ro rhgb\ngrub_users $grub_users\n"
        }
    )
    s = Setup(tmp_path, dracut_base, [PLUGIN], root)
    staging = tmp_path / "staging"
    staging.mkdir()
    grub_entry = root / "boot/loader/entries" / name
    env = plugin_env(
        s,
        KERNEL_INSTALL_LAYOUT="other",
        KERNEL_INSTALL_STAGING_AREA=str(staging),
        KERNEL_INSTALL_VERBOSE="1",
    )
    out = run_plugin(s, env, "add", kernel.version, str(s.boot / "unused"), str(kernel.image))
    assert out.returncode == 0, out.stderr
    assert s.dracut_runs == 1
    built = s.root / f"boot/initramfs-{kernel.version}.img"
    assert initramfs.missing(built) == [] and list(staging.iterdir()) == []
    assert grub_entry.read_text().splitlines()[4:] == [
        "options ro rhgb root=/dev/etherd/e11.0p1 rd.aoe.iface=eth0",
        "grub_users $grub_users",
    ]
    assert f"set the AoE options in {grub_entry}" in out.stdout


def test_one_initramfs_per_entry(tmp_path, kernel, dracut_base, good_initrd):
    """Debian passes /boot/initrd.img-KVER and dracut's plugin staged another: 90-loaderentry
    would list both, and every netboot would fetch and unpack both."""
    s = Setup(tmp_path, dracut_base, [PLUGIN])
    staging = tmp_path / "staging"
    staging.mkdir()
    shutil.copy(good_initrd, staging / "initrd")
    env = plugin_env(s, KERNEL_INSTALL_STAGING_AREA=str(staging), KERNEL_INSTALL_VERBOSE="1")
    out = run_plugin(
        s,
        env,
        "add",
        kernel.version,
        str(s.boot / MACHINE_ID / kernel.version),
        str(kernel.image),
        str(good_initrd),
    )
    assert out.returncode == 0, out.stderr
    assert not (staging / "initrd").exists() and s.dracut_runs == 0
    assert f"the entry boots {good_initrd}" in out.stdout
    assert f"checked: {good_initrd} has the aoe driver and our dracut module" in out.stdout


def make_uki(tmp_path: Path, initrd: Path | None) -> Path:
    """A unified kernel image as systemd's stub and objcopy make one (ukify's ancestor)."""
    require_programs("objcopy")
    stub = Path("/usr/lib/systemd/boot/efi/linuxx64.efi.stub")
    if not stub.exists():
        require_programs("linuxx64.efi.stub (systemd-boot-efi)")
    uki = tmp_path / "uki.efi"
    sections = [
        "--add-section",
        f".osrel={Path('/etc/os-release').resolve()}",
        "--change-section-vma",
        ".osrel=0x20000",
    ]
    if initrd is not None:
        sections += [
            "--add-section",
            f".initrd={initrd}",
            "--change-section-vma",
            ".initrd=0x3000000",
        ]
    subprocess.run(["objcopy", *sections, str(stub), str(uki)], check=True, capture_output=True)
    return uki


@pytest.mark.parametrize("has_aoe", [True, False])
def test_a_uki_is_checked_never_reported_fine_without_aoe(
    tmp_path, kernel, dracut_base, good_initrd, has_aoe
):
    s = Setup(tmp_path, dracut_base, [PLUGIN])
    if has_aoe:
        initrd = good_initrd
    else:
        initrd = tmp_path / "plain.cpio"
        (tmp_path / "init").write_text("#!/bin/sh\n")
        subprocess.run(
            ["cpio", "-o", "-H", "newc", "--quiet", "-O", str(initrd)],
            input="init\n",
            cwd=tmp_path,
            check=True,
            text=True,
        )
    uki = make_uki(tmp_path, initrd)
    env = plugin_env(
        s, KERNEL_INSTALL_IMAGE_TYPE="uki", KERNEL_INSTALL_LAYOUT="uki", KERNEL_INSTALL_VERBOSE="1"
    )
    out = run_plugin(s, env, "add", kernel.version, str(s.boot / "x"), str(uki))
    assert s.dracut_runs == 0  # nothing dracut builds would reach a UKI
    if has_aoe:
        assert out.returncode == 0, out.stderr
        assert f"checked: the initrd inside {uki} has the aoe driver" in out.stdout
    else:
        assert out.returncode == 2
        assert out.stderr.strip() == (
            f"aoeboot: the unified kernel image {uki} carries its own initrd, built without the "
            "aoe driver and the aoeboot dracut module: it cannot boot root from AoE, and no "
            "initramfs aoeboot builds would reach it (install a kernel with a separate "
            "initramfs (Fedora: kernel, not kernel-uki-virt))"
        )


def test_a_uki_without_initrd(tmp_path, kernel, dracut_base):
    s = Setup(tmp_path, dracut_base, [PLUGIN])
    uki = make_uki(tmp_path, None)
    out = run_plugin(
        s,
        plugin_env(s, KERNEL_INSTALL_IMAGE_TYPE="uki"),
        "add",
        kernel.version,
        str(s.boot / "x"),
        str(uki),
    )
    assert out.returncode == 2
    assert f"{uki} is a unified kernel image without an initrd" in out.stderr
