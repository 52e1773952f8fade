"""`aoeboot status` on prepared roots: a healthy one, then one per broken link of the chain.

The root holds what status reads (/etc, /boot, /lib/modules, and /proc and /sys as the running
box would show them), a real dracut-built initramfs, and a real publish to a NAS directory.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Callable

import pytest

from aoeboot import netif, publish
from aoeboot.config import BootConfig, Config, PublishConfig
from aoeboot.target import Target
from tests.helpers import aoeboot, require_programs
from tests.sysroot import write

MACHINE_ID = "0123456789abcdef0123456789abcdef"
OPTIONS = "ro quiet root=/dev/etherd/e11.0p1 rootfstype=ext4 rd.aoe.iface=eth0"
OPTIONS_BAKED = "root=/dev/etherd/e11.0p1 rootfstype=ext4 rd.aoe.iface=eth0 rd.aoe=1\n"
BOOT_UUID = "4d3f1b7c-6f2a-4b8e-9a51-0c2d7e8f9a10"
FSTAB = f"/dev/etherd/e11.0p1 / ext4 defaults 0 0\nUUID={BOOT_UUID} /boot ext4 defaults 1 2\n"


def _append_archive(image: Path, work: Path, files: dict[str, str]) -> None:
    """Append a newc archive holding `files` to `image`."""
    for name, text in files.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(text)
    names = ("\n".join(files) + "\n").encode()
    listing = subprocess.run(
        ["cpio", "-o", "-H", "newc", "--quiet"],
        input=names,
        cwd=work,
        check=True,
        capture_output=True,
    )
    with open(image, "ab") as handle:
        handle.write(listing.stdout)


def healthy_root(sysroot: Callable[..., Path], tmp_path: Path, kver: str, initrd: Path) -> Path:
    nas = tmp_path / "nas"
    nas.mkdir()  # the NAS's share, mounted
    root = sysroot(
        kver=kver,
        modules_dep="kernel/drivers/block/aoe/aoe.ko.xz:\n",
        initramfs=initrd,
        entries={
            f"{MACHINE_ID}-{kver}.conf": f"title Fedora\nversion {kver}\nlinux /vmlinuz-{kver}\n"
            f"initrd /initramfs-{kver}.img\noptions {OPTIONS}\n"
        },
        cmdline=OPTIONS + "\n",
        config=f"[boot]\ntarget = e11.0p1\ninterfaces = eth0\n[publish]\ndestination = {nas}\n"
        "host = box\n",
        fstab=FSTAB,
        files={
            "etc/dracut.conf.d/90-aoeboot.conf": 'add_dracutmodules+=" aoe "\n',
            "usr/lib/dracut/modules.d/59aoe/module-setup.sh": "# installed\n",
            "usr/lib/kernel/install.d/60-aoeboot.install": "# installed\n",
            "usr/lib/udev/rules.d/61-aoeboot.rules": "# installed\n",
        },
    )
    shutil.copy(initrd, tmp_path / "unbaked.img")
    # What the dracut module bakes in on an AoE host (the fixture's build ran on a host that
    # is not one): a second archive, as the kernel unpacks them in order.
    _append_archive(
        root / "boot" / f"initramfs-{kver}.img",
        tmp_path / "baked",
        {"etc/cmdline.d/50-aoeboot.conf": OPTIONS_BAKED},
    )
    (root / "dev/disk/by-uuid").mkdir(parents=True)
    (root / "dev/etherd").mkdir(parents=True)
    (root / "dev/etherd/e11.0p1").write_text("")
    (root / f"dev/disk/by-uuid/{BOOT_UUID}").symlink_to("../../etherd/e11.0p1")
    (root / "sys/class/net/eth0").mkdir(parents=True)
    (root / "etc/systemd/system/timers.target.wants").mkdir(parents=True)
    (root / "etc/systemd/system/timers.target.wants/aoeboot-publish.timer").symlink_to(
        "/usr/lib/systemd/system/aoeboot-publish.timer"
    )
    (root / "etc/systemd/system/multi-user.target.wants").mkdir(parents=True)
    (root / "etc/systemd/system/multi-user.target.wants/aoeboot-watch.service").symlink_to(
        "/usr/lib/systemd/system/aoeboot-watch.service"
    )
    _watched(answered=True)(root)
    # The running box: / from the AoE partition, the driver loaded and the disk up.
    write(root, "proc/sys/kernel/osrelease", kver + "\n")
    write(
        root,
        "proc/self/mountinfo",
        f"23 1 259:1 / {root} rw,relatime shared:1 - ext4 /dev/etherd/e11.0p1 rw\n",
    )
    write(root, "sys/module/aoe/parameters/aoe_deadsecs", "0\n")  # what our initramfs sets
    disk = "sys/block/etherd!e11.0"
    for name, value in (
        ("state", "up"),
        ("size", "8388608"),
        ("mac", "525400123456"),
        ("netif", "eth0"),
    ):
        write(root, f"{disk}/{name}", value + "\n")
    (root / disk / "etherd!e11.0p1").mkdir()
    # The NAS: the kernel published for real (kernel image: any file stands in here).
    write(root, f"boot/vmlinuz-{kver}", "kernel image\n")
    config = Config(BootConfig(Target(11, 0, 1), ("eth0",)), PublishConfig(str(nas), host="box"))
    publish.after_add(
        root=root,
        config=config,
        kver=kver,
        kernel=root / f"boot/vmlinuz-{kver}",
        initrd=initrd,
        options=tuple(OPTIONS.split()),
    )
    return root


def _watched(answered: bool, age: float = 3) -> Callable[[Path], None]:
    """What aoeboot-watch last wrote: the NAS answering, or silent, `age` seconds ago."""

    def write(root: Path) -> None:
        state = {
            "disk": "e11.0",
            "interfaces": ["eth0"],
            "servers": [],
            "answered_by": ["52:54:00:12:34:56"] if answered else [],
            "silent": not answered,
            "quiet_seconds": 2.0 if answered else 75.0,
            "silent_after": 30,
            "links_restored": 0,
            "checked": time.time() - age,
        }
        (root / "run/aoeboot").mkdir(parents=True, exist_ok=True)
        (root / "run/aoeboot/watch.json").write_text(json.dumps(state))

    return write


def status(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return aoeboot("status", "--root", str(root), *args)


def levels(out: subprocess.CompletedProcess[str]) -> list[tuple[str, str, str]]:
    checks = json.loads(out.stdout)["checks"]
    return [(c["level"], c["name"], c["message"]) for c in checks]


@pytest.fixture
def root(sysroot, tmp_path, aoe_initrd) -> Path:
    require_programs("lsinitrd")
    kver, initrd = aoe_initrd
    return healthy_root(sysroot, tmp_path, kver, initrd)


def test_healthy_root_is_all_ok(root, aoe_initrd):
    kver, _ = aoe_initrd
    out = status(root)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert lines[-1] == "next boot: OK"
    assert all(line.startswith("OK ") for line in lines[:-1]), out.stdout
    names = [line.split()[1] for line in lines[:-1]]
    for name in (
        "config",
        "driver",
        "target",
        "server",
        "root",
        "cmdline",
        "entry",
        "initramfs",
        "dracut",
        "plugin",
        "publish",
        "watch",
    ):
        assert name in names, out.stdout
    assert f"boot/initramfs-{kver}.img has the aoe driver and our module" in out.stdout
    assert f"boots {kver}; files verified" in out.stdout
    # "asked N s ago": N is 3 when written, more by the time status reads it
    assert re.search(
        r"the NAS answers for e11\.0 \(52:54:00:12:34:56\), asked \d+ s ago", out.stdout
    ), out.stdout

    as_json = status(root, "--json")
    assert as_json.returncode == 0
    assert json.loads(as_json.stdout)["next_boot_ok"] is True


def _cpio(path: Path, work: Path) -> None:
    """A real, tiny initramfs (newc cpio) that holds no AoE support."""
    (work / "init").write_text("#!/bin/sh\n")
    subprocess.run(
        ["cpio", "-o", "-H", "newc", "--quiet", "-O", str(path)],
        input="init\n",
        cwd=work,
        check=True,
        text=True,
    )


def _set(path: str, text: str) -> Callable[[Path], None]:
    def change(root: Path) -> None:
        (root / path).write_text(text)

    return change


def _remove(path: str) -> Callable[[Path], None]:
    def change(root: Path) -> None:
        target = root / path
        shutil.rmtree(target) if target.is_dir() else target.unlink()

    return change


def _newer_kernel_without_aoe(root: Path) -> None:
    (root / "lib/modules/99.0.0-1.fc99.x86_64").mkdir(parents=True)
    (root / "lib/modules/99.0.0-1.fc99.x86_64/modules.dep").write_text("kernel/fs/ext4.ko.xz:\n")


def _initrd_without_aoe(root: Path) -> None:
    image = next((root / "boot").glob("initramfs-*.img"))
    image.unlink()
    work = root.parent / "cpio"
    work.mkdir()
    _cpio(image, work)


def _entry_root(root: Path) -> None:
    entry = next((root / "boot/loader/entries").glob("*.conf"))
    entry.write_text(entry.read_text().replace("root=/dev/etherd/e11.0p1", "root=UUID=1234"))


def _nas_files_damaged(root: Path) -> None:
    for published in (root.parent / "nas/box").glob("initrd-*"):
        published.write_bytes(b"truncated")


def _manifest_names_a_path(root: Path) -> None:
    """A manifest whose kernel file is a path: never read from outside the box's directory."""
    manifest = root.parent / "nas/box/manifest.json"
    manifest.write_text(manifest.read_text().replace('"kernel": "', '"kernel": "../'))


def _btrfs_root_subvolume(root: Path) -> None:
    """Fedora's layout, with options that name the type but not the subvolume."""
    fstab = root / "etc/fstab"
    fstab.write_text(fstab.read_text().replace(" / ext4 defaults", " / btrfs subvol=root"))
    for path in [root / "etc/kernel/cmdline", *(root / "boot/loader/entries").glob("*.conf")]:
        path.write_text(path.read_text().replace("rootfstype=ext4", "rootfstype=btrfs"))


def _grub_without_aoe(root: Path) -> None:
    (root / "etc/default").mkdir(parents=True)
    (root / "etc/default/grub").write_text('GRUB_TIMEOUT=5\nGRUB_CMDLINE_LINUX="rhgb quiet"\n')


def _unbaked_initrd(root: Path) -> None:
    shutil.copy(root.parent / "unbaked.img", next((root / "boot").glob("initramfs-*.img")))


def _rescue_without_aoe(root: Path) -> None:
    work = root.parent / "rescue"
    work.mkdir()
    _cpio(root / "boot" / f"initramfs-0-rescue-{MACHINE_ID}.img", work)


def _uefi(root: Path) -> None:
    """The box booted with UEFI (the kernel's /sys/firmware/efi)."""
    (root / "sys/firmware/efi").mkdir(parents=True)
    (root / "sys/firmware/efi/fw_platform_size").write_text("64\n")


def _uefi_with_bios_ipxe_only(root: Path) -> None:
    _uefi(root)
    _publish_real_kernel(root)
    (root.parent / "nas/undionly.kpxe").write_text("iPXE for BIOS\n")


def _publish_real_kernel(root: Path) -> None:
    """Publish the machine's own kernel (an EFI stub bzImage) in place of the stand-in."""
    from aoelab.kernel import installed_kernel

    kernel = installed_kernel()
    assert kernel is not None, "no installed kernel (linux-image-amd64)"
    kver = (root / "proc/sys/kernel/osrelease").read_text().strip()
    shutil.copy(kernel.image, root / f"boot/vmlinuz-{kver}")
    config = Config(
        BootConfig(Target(11, 0, 1), ("eth0",)), PublishConfig(str(root.parent / "nas"), host="box")
    )
    publish.after_add(
        root=root,
        config=config,
        kver=kver,
        kernel=root / f"boot/vmlinuz-{kver}",
        initrd=root / f"boot/initramfs-{kver}.img",
        options=tuple(OPTIONS.split()),
    )


BROKEN = [
    # under UEFI iPXE starts the kernel as a PE program: the stand-in kernel has no EFI stub
    ("publish", _uefi, "this box boots with UEFI, but the NAS's boot.ipxe kernels"),
    (
        "config",
        _set("etc/aoeboot/aoeboot.conf", "[boot]\ntarget = e70000.0p1\n"),
        "etc/aoeboot/aoeboot.conf:2: target: AoE shelf 70000 out of range",
    ),
    (
        "driver",
        _newer_kernel_without_aoe,
        "the newest kernel 99.0.0-1.fc99.x86_64 has no aoe driver",
    ),
    ("target", _remove("sys/block/etherd!e11.0"), "e11.0 is not visible (targets seen: none)"),
    ("target", _set("sys/block/etherd!e11.0/state", "down,closewait\n"), "e11.0 is down,closewait"),
    ("target", _remove("sys/block/etherd!e11.0/etherd!e11.0p1"), "e11.0 has no partition 1"),
    (
        "root",
        _set("proc/self/mountinfo", "23 1 259:1 / ROOT rw - ext4 /dev/etherd/e11.0p2 rw\n"),
        "/ is mounted from /dev/etherd/e11.0p2, but the boot target is /dev/etherd/e11.0p1",
    ),
    ("cmdline", _remove("etc/kernel/cmdline"), "/etc/kernel/cmdline is missing"),
    (
        "cmdline",
        _set("etc/kernel/cmdline", "ro root=/dev/sda1\n"),
        "/etc/kernel/cmdline has root=/dev/sda1, not /dev/etherd/e11.0p1",
    ),
    ("entry", _entry_root, "has root=UUID=1234, not /dev/etherd/e11.0p1"),
    ("initramfs", _initrd_without_aoe, "lacks the aoe driver and the aoeboot dracut module"),
    (
        "initramfs",
        lambda root: next((root / "boot").glob("initramfs-*.img")).unlink(),
        "which the entry of kernel 6.1.0-57-amd64 boots, does not exist",
    ),
    ("publish", _nas_files_damaged, "are missing or damaged"),
    ("publish", _manifest_names_a_path, "is damaged: invalid manifest.json kernel '../"),
    # what the real installed system showed: the btrfs top level mounted instead of `root`
    ("cmdline", _btrfs_root_subvolume, "has rootflags=(none), but fstab mounts / with subvol=root"),
    (
        "fstab",
        _remove("usr/lib/udev/rules.d/61-aoeboot.rules"),
        "/usr/lib/udev/rules.d/61-aoeboot.rules is missing",
    ),
    (
        "fstab",
        _remove(f"dev/disk/by-uuid/{BOOT_UUID}"),
        f"/boot: /dev/disk/by-uuid/{BOOT_UUID} does not exist",
    ),
    (
        "interface",
        _remove("sys/class/net/eth0"),
        "allows AoE on eth0, which this system does not have",
    ),
    (
        "watch",
        _watched(answered=False),
        "the NAS has not answered for e11.0 for 75.0 s: the box runs on what it has cached",
    ),
]


@pytest.mark.parametrize(
    "name, breakage, message", BROKEN, ids=[f"{b[0]}-{i}" for i, b in enumerate(BROKEN)]
)
def test_each_broken_link_fails_with_its_own_line(root, name, breakage, message):
    if name == "root":
        mountinfo = root / "proc/self/mountinfo"
        breakage(root)
        mountinfo.write_text(mountinfo.read_text().replace("ROOT", str(root)))
    else:
        breakage(root)
    out = status(root, "--json")
    assert out.returncode == 1, out.stdout + out.stderr
    fails = [(n, m) for level, n, m in levels(out) if level == "FAIL"]
    assert any(n == name and message in m for n, m in fails), fails
    assert json.loads(out.stdout)["next_boot_ok"] is False

    text = status(root)
    assert text.returncode == 1
    assert any(
        line.startswith(f"FAIL  {name}") and message in line for line in text.stdout.splitlines()
    ), text.stdout
    assert text.stdout.splitlines()[-1].startswith("next boot: would FAIL")


def _pending(root: Path) -> None:
    state_file = root / "var/lib/aoeboot/publish.json"
    state = json.loads(state_file.read_text())
    state["pending"] = [
        {"action": "add", "kver": "6.2.0", "kernel": "/x", "initrd": "/y", "options": []}
    ]
    state["error"] = "rsync to nas failed: connection refused"
    state_file.write_text(json.dumps(state))


def _second_server(root: Path) -> None:
    """A second NAS (or a spoofer) answers for e11.0: the driver's debugfs file lists it as one
    more server of the disk; sysfs `mac` still shows only the first."""
    config = root / "etc/aoeboot/aoeboot.conf"
    recorded = "interfaces = eth0\nservers = 52:54:00:12:34:56\n"
    config.write_text(config.read_text().replace("interfaces = eth0\n", recorded))
    debugfs = root / "sys/kernel/debug/aoe/e11.0"
    debugfs.parent.mkdir(parents=True)
    debugfs.write_text(DEBUGFS)


def _mask_plugin(root: Path) -> None:
    (root / "etc/kernel/install.d").mkdir(parents=True)
    (root / "etc/kernel/install.d/60-aoeboot.install").symlink_to("/dev/null")


# /sys/kernel/debug/aoe/e11.0 as the driver writes it, with two servers for the disk
DEBUGFS = (
    "rttavg: 2 rttdev: 1\nnskbpool: 0\nkicked: 0\nmaxbcnt: 8192\nref: 1\n"
    "falloc: 1\nffree: 0000000000000000\n525400123456:0:16:16\n\tssthresh:8\n\ttaint:0\n"
    "\tr:3\n\tw:1\n\teth0\n"
    "falloc: 1\nffree: 0000000000000000\n02aa00000099:0:1:16\n\tssthresh:8\n\ttaint:0\n"
    "\tr:1\n\tw:0\n\teth0\n"
)


def _two_paths(root: Path) -> None:
    """Not a warning: the healthy box with a second NIC, as the driver's debugfs shows it."""
    (root / "sys/kernel/debug/aoe").mkdir(parents=True)
    (root / "sys/kernel/debug/aoe/e11.0").write_text(
        "rttavg: 900 rttdev: 100\n525400123456:0:16:16\n\tssthresh:8\n\ttaint:0\n\tr:9\n"
        "\tw:9\n\teth0,eth1\n"
    )


def test_status_shows_every_path(root):
    _two_paths(root)
    out = status(root)
    assert out.returncode == 0, out.stdout
    assert (
        "e11.0 is up, 4.0 GiB, over 2 paths: eth0 to 52:54:00:12:34:56, eth1 to 52:54:00:12:34:56"
    ) in out.stdout


def test_status_names_the_frame_size_and_a_path_smaller_than_the_nics(root):
    (root / "sys/block/etherd!e11.0/payload").write_text("1024\n")
    (root / "sys/class/net/eth0/mtu").write_text("1500\n")
    assert ("OK", "frames", "1024 byte data frames for e11.0") in levels(status(root, "--json"))
    (root / "sys/class/net/eth0/mtu").write_text("9000\n")
    out = status(root, "--json")
    assert out.returncode == 0, out.stdout
    assert (
        "WARN",
        "frames",
        "1024 byte data frames for e11.0, though eth0 MTU 9000 would "
        "carry 8704: the NAS's interface or a switch has the smaller MTU",
    ) in levels(out)


def test_status_shows_that_the_root_disk_waits_for_the_nas(root):
    out = status(root)
    assert "OK    deadsecs   aoe_deadsecs=0: the root disk waits for the NAS" in out.stdout, (
        out.stdout
    )


WARNINGS = [
    (
        "server",
        _second_server,
        "e11.0 is also answered by 02:aa:00:00:00:99, which "
        "/etc/aoeboot/aoeboot.conf does not record (recorded: 52:54:00:12:34:56)",
    ),
    (
        "deadsecs",
        _set("sys/module/aoe/parameters/aoe_deadsecs", "180\n"),
        "aoe_deadsecs=180: the aoe driver gives up on the root disk when the NAS is away 180 s",
    ),
    (
        "deadsecs",
        _set(
            "etc/aoeboot/aoeboot.conf",
            "[boot]\ntarget = e11.0p1\ninterfaces = eth0\ndeadsecs = 60\n",
        ),
        "sets deadsecs = 60: each boot gives up on the root disk after the NAS is away 60 s",
    ),
    (
        "firmware",
        _uefi_with_bios_ipxe_only,
        "holds iPXE for BIOS (undionly.kpxe) but none for UEFI (ipxe.efi or snponly.efi)",
    ),
    (
        "dracut",
        _remove("etc/dracut.conf.d/90-aoeboot.conf"),
        "/etc/dracut.conf.d/90-aoeboot.conf is missing",
    ),
    ("plugin", _mask_plugin, "masks the kernel-install plugin"),
    ("publish", _pending, "add 6.2.0 (rsync to nas failed: connection refused)"),
    ("root", _set("proc/self/mountinfo", ""), "/ is not mounted from /dev/etherd/e11.0p1"),
    (
        "publish",
        _remove("etc/systemd/system/timers.target.wants/aoeboot-publish.timer"),
        "aoeboot-publish.timer is not enabled",
    ),
    ("initramfs", _unbaked_initrd, "does not carry the AoE options itself"),
    (
        "initramfs",
        _second_server,
        "carries the AoE options itself, but the servers it expects "
        "(none) are not those /etc/aoeboot/aoeboot.conf records (52:54:00:12:34:56)",
    ),
    (
        "grub",
        _grub_without_aoe,
        "GRUB_CMDLINE_LINUX in /etc/default/grub lacks root=/dev/etherd/e11.0p1",
    ),
    ("rescue", _rescue_without_aoe, "the rescue entry cannot reach root on AoE"),
    (
        "watch",
        _remove("etc/systemd/system/multi-user.target.wants/aoeboot-watch.service"),
        "aoeboot-watch.service is not enabled: nothing keeps the root disk's NICs up",
    ),
    ("watch", _watched(answered=True, age=600), "aoeboot-watch.service is not running"),
    ("watch", _remove("run/aoeboot/watch.json"), "aoeboot-watch.service is not running"),
]


@pytest.mark.parametrize(
    "name, breakage, message", WARNINGS, ids=[f"{w[0]}-{i}" for i, w in enumerate(WARNINGS)]
)
def test_what_only_breaks_later_warns_and_exits_0(root, name, breakage, message):
    breakage(root)
    out = status(root, "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    found = levels(out)
    assert ("WARN", name) in [(level, n) for level, n, _ in found], found
    assert any(message in m for level, n, m in found if level == "WARN" and n == name), found
    assert all(level != "FAIL" for level, _, _ in found), found


def test_servers_as_recorded_are_ok(root):
    _second_server(root)
    config = root / "etc/aoeboot/aoeboot.conf"
    config.write_text(
        config.read_text().replace(
            "servers = 52:54:00:12:34:56", "servers = 02:aa:00:00:00:99 52:54:00:12:34:56"
        )
    )
    out = status(root, "--json")
    assert (
        "OK",
        "server",
        "e11.0 is served by 52:54:00:12:34:56, 02:aa:00:00:00:99, as recorded",
    ) in levels(out), out.stdout
    (root / "sys/kernel/debug/aoe/e11.0").unlink()  # no debugfs: sysfs names the first server
    assert (
        "OK",
        "server",
        "e11.0 is served by 52:54:00:12:34:56, as recorded (02:aa:00:00:00:99 not heard)",
    ) in levels(status(root, "--json"))


def test_root_not_set_up_at_all(tmp_path):
    out = status(tmp_path)
    assert out.returncode == 1
    assert out.stdout.splitlines()[0].startswith("FAIL  config  no AoE boot target")


def test_doctor_is_status(tmp_path):
    assert aoeboot("doctor", "--root", str(tmp_path)).stdout == status(tmp_path).stdout


def test_status_names_the_firmware(root):
    bios = status(root)
    assert bios.returncode == 0
    assert "OK    firmware   booted with BIOS" in bios.stdout.splitlines(), bios.stdout
    _uefi(root)
    _publish_real_kernel(root)
    (root / "sys/firmware/acpi/tables").mkdir(parents=True)
    (root / "sys/firmware/acpi/tables/aBFT").write_bytes(b"aBFT" + bytes(42))
    (root.parent / "nas/snponly.efi").write_text("iPXE for UEFI\n")
    (root.parent / "nas/undionly.kpxe").write_text("iPXE for BIOS\n")
    uefi = status(root, "--json")
    assert uefi.returncode == 0, uefi.stdout + uefi.stderr
    found = levels(uefi)
    assert (
        "OK",
        "firmware",
        "booted with UEFI (64-bit); iPXE attached the AoE disk and left its "
        "aBFT (root=aoe:abft works)",
    ) in found, found
    assert all(level == "OK" for level, _, _ in found), found


def test_an_image_that_expects_the_recorded_servers_is_ok(root, tmp_path):
    _second_server(root)  # records 52:54:00:12:34:56
    image = next((root / "boot").glob("initramfs-*.img"))
    # as `dracut -f` rebuilds it once the servers are recorded: a later archive wins
    _append_archive(
        image,
        tmp_path / "servers",
        {
            "etc/cmdline.d/50-aoeboot.conf": OPTIONS_BAKED.replace("\n", " ")
            + "rd.aoe.server=52:54:00:12:34:56\n"
        },
    )
    found = levels(status(root, "--json"))
    assert ("OK", "initramfs", f"/boot/{image.name} carries the AoE options itself") in found, found


# ---- NetworkManager and the NICs of the root disk (no initramfs needed: no dracut) ----

NM_DROPIN = "etc/NetworkManager/conf.d/90-aoeboot.conf"
ETH0 = "52:54:00:12:34:56"


def nm_root(sysroot: Callable[..., Path], interfaces: str = "eth0") -> Path:
    """A box with NetworkManager whose root disk goes through eth0 (permanent MAC ETH0)."""
    from aoeboot import nmconf

    return sysroot(
        config=f"[boot]\ntarget = e11.0p1\ninterfaces = {interfaces}\n",
        nics={"eth0": ETH0},
        files={
            "usr/sbin/NetworkManager": "",
            "sys/class/net/eth0/addr_assign_type": "0\n",
            NM_DROPIN: nmconf.render([ETH0]),
        },
    )


def nm_checks(
    root: Path, wake_on_lan: Callable[[str], netif.WakeOnLan | None] | None = None
) -> list[tuple[str, str, str, str]]:
    from aoeboot import status as checking

    checks = checking.check(root, wake_on_lan=wake_on_lan)
    return [(c.level, c.name, c.message, c.hint) for c in checks if c.name in ("nm", "suspend")]


LIMITS = (
    "WARN",
    "nm",
    "no configuration keeps NetworkManager from taking the root disk's link "
    "down on `nmcli networking off`, `nmcli device set eth0 managed no`, or keyfile "
    "unmanaged-devices naming it and a reload, nor from giving it a new MAC for a profile "
    "that sets cloned-mac-address; nor does it bring the link back after "
    "`ip link set eth0 down`: the root disk then waits for ever",
    "never do these on this box",
)


def test_networkmanager_dropin_that_covers_the_nic_is_ok(sysroot):
    """Off the running system (a --root) there is no kernel to ask for Wake-on-LAN: no suspend
    line, and the limits said plainly."""
    assert nm_checks(nm_root(sysroot)) == [
        (
            "OK",
            "nm",
            "/etc/NetworkManager/conf.d/90-aoeboot.conf keeps eth0 (52:54:00:12:34:56) "
            "managed with its MAC, Wake-on-LAN on where it has it, and the link up at poweroff",
            "",
        ),
        LIMITS,
    ]


def test_with_the_watcher_a_link_taken_down_comes_back_and_only_the_mac_is_left(sysroot):
    root = nm_root(sysroot)
    link = root / "etc/systemd/system/multi-user.target.wants/aoeboot-watch.service"
    link.parent.mkdir(parents=True)
    link.symlink_to("/usr/lib/systemd/system/aoeboot-watch.service")
    assert nm_checks(root)[1] == (
        "OK",
        "nm",
        "a link NetworkManager (or anyone) takes down, on `nmcli networking off`, "
        "`nmcli device set eth0 managed no` or `ip link set eth0 down`, aoeboot-watch.service "
        "brings up again; a profile that sets cloned-mac-address would still give the NIC a "
        "MAC the NAS does not answer: never set one on this NIC",
        "",
    )


@pytest.mark.parametrize(
    "breakage, message",
    [
        (
            lambda root: (root / NM_DROPIN).unlink(),
            "/etc/NetworkManager/conf.d/90-aoeboot.conf is missing: NetworkManager may unmanage "
            "eth0 (52:54:00:12:34:56) for a udev NM_UNMANAGED rule (taking the link down), give it "
            "another drop-in's default MAC, or take it down at poweroff, and the root disk then "
            "waits for ever",
        ),
        (
            lambda root: (root / "sys/class/net/eth0/address").write_text("52:54:00:00:00:09\n"),
            "/etc/NetworkManager/conf.d/90-aoeboot.conf does not cover eth0 (52:54:00:00:00:09): "
            "NetworkManager may unmanage it for a udev rule (taking the link down) or give it "
            "another MAC",
        ),
        (
            lambda root: (root / NM_DROPIN).write_text(
                (root / NM_DROPIN).read_text().replace("managed=1", "managed=0")
            ),
            "/etc/NetworkManager/conf.d/90-aoeboot.conf does not cover eth0 (52:54:00:12:34:56)",
        ),
        (
            lambda root: (root / NM_DROPIN).write_text("[device-aoeboot\nmanaged=1\n"),
            "/etc/NetworkManager/conf.d/90-aoeboot.conf does not cover eth0 (52:54:00:12:34:56)",
        ),
    ],
)
def test_networkmanager_dropin_missing_or_short_warns(sysroot, breakage, message):
    root = nm_root(sysroot)
    breakage(root)
    level, name, found, hint = nm_checks(root)[0]
    assert (level, name, hint) == ("WARN", "nm", "run `aoeboot install-entry`")
    assert found.startswith(message), found


def test_a_nic_not_on_its_permanent_mac_is_not_matched(sysroot):
    root = nm_root(sysroot)
    (root / "sys/class/net/eth0/addr_assign_type").write_text("3\n")  # a .link MACAddress=
    assert nm_checks(root)[0] == (
        "WARN",
        "nm",
        "eth0 (52:54:00:12:34:56) does not run with its permanent MAC (sysfs "
        "addr_assign_type is not 0): NetworkManager matches the drop-in's mac: against the "
        "permanent one, so /etc/NetworkManager/conf.d/90-aoeboot.conf does not apply to it",
        "keep the NIC's burned-in MAC (no MACAddress= in a .link file), then "
        "`aoeboot install-entry`",
    )


def test_a_nic_named_by_mac_is_found_under_its_name(sysroot):
    level, _, message, _ = nm_checks(nm_root(sysroot, interfaces=ETH0.upper()))[0]
    assert level == "OK" and "keeps eth0 (52:54:00:12:34:56) managed" in message


def test_suspend_hangs_a_box_whose_nic_has_no_wake_on_lan(sysroot):
    from aoeboot.netif import WAKE_MAGIC, WakeOnLan

    root = nm_root(sysroot)
    asked = []

    def virtio(name: str) -> WakeOnLan | None:
        asked.append(name)
        return None

    suspend = [c for c in nm_checks(root, virtio) if c[1] == "suspend"]
    assert asked == ["eth0"]
    assert suspend == [
        (
            "WARN",
            "suspend",
            "`systemctl suspend` would hang this box for good: NetworkManager "
            "takes eth0 (52:54:00:12:34:56) down before the kernel's last writes to the root disk, "
            "and its driver has no Wake-on-LAN",
            "do not suspend this box: no setting keeps NetworkManager from taking this NIC down "
            "(virtio-net never has Wake-on-LAN)",
        )
    ]
    off = [c for c in nm_checks(root, lambda _: WakeOnLan(WAKE_MAGIC, 0)) if c[1] == "suspend"]
    assert off[0][2].endswith("and its Wake-on-LAN is off"), off
    assert off[0][3] == (
        "`ethtool -s eth0 wol g` turns it on now (NetworkManager does at each "
        "activation with the drop-in)"
    )
    on = [
        c for c in nm_checks(root, lambda _: WakeOnLan(WAKE_MAGIC, WAKE_MAGIC)) if c[1] == "suspend"
    ]
    assert on == [
        (
            "OK",
            "suspend",
            "eth0 (52:54:00:12:34:56) has Wake-on-LAN on: NetworkManager "
            "leaves its link up into suspend (and takes it down and up again on resume)",
            "",
        )
    ]


def test_with_the_watcher_a_nic_without_wake_on_lan_still_sleeps(sysroot):
    root = nm_root(sysroot)
    link = root / "etc/systemd/system/multi-user.target.wants/aoeboot-watch.service"
    link.parent.mkdir(parents=True)
    link.symlink_to("/usr/lib/systemd/system/aoeboot-watch.service")
    suspend = [c for c in nm_checks(root, lambda _: None) if c[1] == "suspend"]
    assert suspend == [
        (
            "OK",
            "suspend",
            "NetworkManager takes eth0 (52:54:00:12:34:56) down before sleeping "
            "(no Wake-on-LAN); aoeboot-watch.service brings it up again at once, so the kernel's "
            "last writes before sleeping reach the NAS",
            "",
        )
    ]


def test_the_kernel_reports_no_wake_on_lan_for_loopback_nor_a_missing_nic():
    from aoeboot import netif

    assert netif.wake_on_lan("lo") is None
    assert netif.wake_on_lan("no-such-nic0") is None


def test_without_networkmanager_nothing_is_said_of_it(sysroot):
    root = nm_root(sysroot)
    (root / "usr/sbin/NetworkManager").unlink()
    assert nm_checks(root) == []


def test_networkmanager_with_no_nic_known_warns(sysroot):
    root = nm_root(sysroot, interfaces="")  # every interface, and the driver not loaded
    assert nm_checks(root) == [
        (
            "WARN",
            "nm",
            "cannot tell which NICs carry the root disk (no [boot] interfaces with a "
            "MAC here, and the aoe driver shows none): whether "
            "/etc/NetworkManager/conf.d/90-aoeboot.conf covers them is unknown",
            "`aoeboot install-entry --iface IF` names them",
        )
    ]


def test_dropin_text_covers_exactly_its_macs():
    from aoeboot import nmconf

    text = nmconf.render(["52:54:00:12:34:56", "52:54:00:00:00:09"])
    assert nmconf.covered(text) == {"52:54:00:12:34:56", "52:54:00:00:00:09"}
    # a MAC only one section names gets only half of the settings: not covered
    one = text.replace(
        "[connection-aoeboot]\nmatch-device=mac:52:54:00:12:34:56,",
        "[connection-aoeboot]\nmatch-device=",
    )
    assert nmconf.covered(one) == {"52:54:00:00:00:09"}
    assert nmconf.covered(text.replace("preserve", "random")) == set()


def test_status_json_carries_the_networkmanager_checks(sysroot):
    out = status(nm_root(sysroot), "--json")
    found = [(level, name) for level, name, _ in levels(out) if name in ("nm", "suspend")]
    assert found == [("OK", "nm"), ("WARN", "nm")], out.stdout


def test_suspend_is_not_guessed_for_a_nic_this_system_lacks(sysroot):
    """A MAC no interface has (the interface check says so): no kernel answer to read."""
    asked: list[str] = []
    found = nm_checks(
        nm_root(sysroot, interfaces="52:54:00:00:00:77"), lambda name: asked.append(name)
    )
    assert asked == [] and [c for c in found if c[1] == "suspend"] == [], found
    assert found[0][:2] == ("WARN", "nm") and "does not cover 52:54:00:00:00:77" in found[0][2]


def test_two_nas_ports_need_a_deadsecs_that_leaves_a_dead_port(root):
    """With aoe_deadsecs=0 the driver resends to a dead server MAC for ever (issue 17, part 5);
    install-entry's PORTS_DEADSECS lets it go on over the other port and never fails the disk."""
    (root / "etc/aoeboot/aoeboot.conf").write_text(
        "[boot]\ntarget = e11.0p1\ninterfaces = eth0\n"
        "servers = 52:54:00:12:34:56 02:aa:00:00:00:99\n"
    )
    found = [check for check in levels(status(root, "--json")) if check[1] == "deadsecs"]
    assert found == [
        (
            "WARN",
            "deadsecs",
            "aoe_deadsecs=0 with 2 NAS ports recorded: when one "
            "port dies, the root disk waits for it for ever instead of going on over "
            "another",
        )
    ], found
    (root / "sys/module/aoe/parameters/aoe_deadsecs").write_text("2147483647\n")
    found = [check for check in levels(status(root, "--json")) if check[1] == "deadsecs"]
    assert found == [
        (
            "OK",
            "deadsecs",
            "aoe_deadsecs=2147483647: the root disk waits for the "
            "NAS however long it is away, and leaves a NAS port that stops answering "
            "after 10 s",
        )
    ], found


# ---- a root under LVM on the AoE disk (Fedora Server's layout) ----

LVM_OPTIONS = (
    "root=/dev/mapper/fedora-root rootfstype=xfs rd.lvm.lv=fedora/root rd.aoe=1 rd.aoe.iface=eth0"
)


def _lvm_root(root: Path, tmp_path: Path, image_has_lvm: bool = True) -> None:
    """The healthy box, with / on LV fedora/root whose PV is e11.0p3, as install-entry sets it
    up: the options, the fstab, the sysfs of the running box, an image with dracut's lvm."""
    from tests import sysfs

    config = root / "etc/aoeboot/aoeboot.conf"
    config.write_text(config.read_text().replace("target = e11.0p1", "target = e11.0p3"))
    for path in [root / "etc/kernel/cmdline", *(root / "boot/loader/entries").glob("*.conf")]:
        path.write_text(path.read_text().replace(OPTIONS.removeprefix("ro quiet "), LVM_OPTIONS))
    fstab = root / "etc/fstab"
    fstab.write_text(
        fstab.read_text().replace("/dev/etherd/e11.0p1 / ext4", "/dev/mapper/fedora-root / xfs")
    )
    sysfs.lvm_on(root, sysfs.aoe_partition(root))
    sysfs.mountinfo(root, "/dev/mapper/fedora-root", "xfs")
    (root / "sys/block/etherd!e11.0/etherd!e11.0p3").mkdir()
    image = next((root / "boot").glob("initramfs-*.img"))
    shutil.copy(tmp_path / "unbaked.img", image)
    files = {"etc/cmdline.d/50-aoeboot.conf": LVM_OPTIONS + "\n"}
    if image_has_lvm:
        files["usr/sbin/lvm_scan"] = "#!/bin/sh\n"
    _append_archive(image, tmp_path / "lvm", files)


def test_a_root_on_lvm_on_aoe_is_ok_and_named(root, tmp_path):
    _lvm_root(root, tmp_path)
    found = levels(status(root, "--json"))
    assert ("OK", "root", "/ is mounted from fedora/root (LVM logical volume) on e11.0p3") in found
    assert ("OK", "cmdline", f"/etc/kernel/cmdline: {LVM_OPTIONS}") in found, found
    assert any(
        level == "OK"
        and name == "entry"
        and message.endswith("boots root from /dev/mapper/fedora-root on e11.0p3")
        for level, name, message in found
    )
    assert any(
        level == "OK"
        and name == "initramfs"
        and message.endswith(
            "has the aoe driver and our module and assembles /dev/mapper/fedora-root"
        )
        for level, name, message in found
    ), found
    wrong = [(level, name, message) for level, name, message in found if level != "OK"]
    assert wrong == [], wrong


@pytest.mark.parametrize(
    "change, message",
    [
        (
            "root=/dev/etherd/e11.0p3",
            "has root=/dev/etherd/e11.0p3, which is the AoE disk under / "
            "(e11.0p3), not a file system",
        ),
        (
            "root=UUID=5eed rd.lvm.lv=fedora/root",
            "has root=UUID=5eed, but fstab mounts / from /dev/mapper/fedora-root",
        ),
        (
            "root=/dev/mapper/fedora-root",
            "lacks rd.lvm.lv=fedora/root: the initramfs would not assemble /",
        ),
    ],
)
def test_an_entry_that_would_not_find_the_lvm_root_fails(root, tmp_path, change, message):
    _lvm_root(root, tmp_path)
    entry = next((root / "boot/loader/entries").glob("*.conf"))
    entry.write_text(
        entry.read_text().replace(
            "root=/dev/mapper/fedora-root rootfstype=xfs rd.lvm.lv=fedora/root", change
        )
    )
    out = status(root, "--json")
    assert out.returncode == 1
    assert any(
        level == "FAIL" and name == "entry" and message in text for level, name, text in levels(out)
    ), levels(out)


def test_an_image_without_lvm_fails_for_an_lvm_root(root, tmp_path):
    _lvm_root(root, tmp_path, image_has_lvm=False)
    out = status(root, "--json")
    assert out.returncode == 1
    assert any(
        level == "FAIL" and name == "initramfs" and "lacks the LVM (dracut's lvm module)" in text
        for level, name, text in levels(out)
    ), levels(out)


def test_another_name_of_the_lv_is_the_lv(root, tmp_path):
    _lvm_root(root, tmp_path)
    entry = next((root / "boot/loader/entries").glob("*.conf"))
    entry.write_text(entry.read_text().replace("root=/dev/mapper/fedora-root", "root=/dev/dm-0"))
    found = levels(status(root, "--json"))
    assert [(level, name) for level, name, _ in found if name == "entry"] == [("OK", "entry")]


def test_fstab_mounts_through_lvm_are_named_down_to_their_aoe_disk(root, tmp_path):
    from tests import sysfs

    _lvm_root(root, tmp_path)
    sysfs.lvm_on(root, "etherd!e11.0p3", dm_name="fedora-home", device="dm-2", number="253:2")
    with open(root / "etc/fstab", "a") as fstab:
        fstab.write("/dev/mapper/fedora-home /home xfs defaults 0 0\n")
    found = levels(status(root, "--json"))
    assert (
        "OK",
        "fstab",
        "/home: /dev/mapper/fedora-home is fedora/home (LVM logical volume) "
        "on e11.0p3, up via eth0",
    ) in found, found
    (root / "sys/block/etherd!e11.0/state").write_text("down\n")
    found = levels(status(root, "--json"))
    assert (
        "FAIL",
        "fstab",
        "/home: /dev/mapper/fedora-home is fedora/home (LVM logical volume) on e11.0p3, e11.0 down",
    ) in found, found
