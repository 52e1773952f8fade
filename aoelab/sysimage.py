"""A real installed Debian 13 ("trixie") system on a disk laid out the way Fedora's installer
lays one out, built once and cached outside the checkout.

    disk = system_image(tmp / "sys.img")     # make_disk(base_tree(), ...): the tree is cached
    with mounted(disk) as target:            # like Anaconda's /mnt/sysimage
        install_aoeboot(target)
        chroot_run(target, ["kernel-install", "add", kver, f"/boot/vmlinuz-{kver}"])
    boot = boot_local(disk, tmp)             # its own kernel and initramfs, a local virtio disk
    assert all(r.clean for r in fsck(disk).values())

The disk (Anaconda's default on UEFI): GPT; p1 ESP (vfat) on /boot/efi, p2 /boot (ext4), p3 btrfs
with subvolumes `root` (/) and `home` (/home); fstab mounts all four by UUID with Anaconda's
options; the kernel command line needs `rootflags=subvol=root` (the top level's default
subvolume stays the top level, as on Fedora). Every UUID is a fixed constant below.

That is the WORKSTATION layout, the default everywhere. SERVER is Fedora Server's default:
the same ESP, p2 /boot (xfs, 1 GiB), p3 an LVM physical volume with VG `fedora` and one LV `root`
(xfs) over all of it; fstab mounts / as /dev/mapper/fedora-root, the kernel command line says
`rd.lvm.lv=fedora/root`, and the tree (server_tree) adds lvm2 and xfsprogs. The host has no
device-mapper: aoelab.lvmdisk writes the LVM metadata without activating it and reaches the LV
through a loop device over its extents. `mounted`, `fsck` and `boot_local` tell the layout from
p3's partition type; `make_disk` and `system_image` take it (`server_image` for short).

Kernels. `base_tree()` installs trixie's 6.12 (`kernel="trixie"`, the default) or bookworm's
6.1 (`kernel="bookworm"`) from .deb files downloaded once into the cache; `kernel_debs("trixie")`
gives the 6.12 .debs for a later `dpkg -i` (image package and the linux-image-amd64 metapackage:
installing both upgrades the 6.1 tree's metapackage and keeps 6.1 installed, as apt would).

How kernel-install is reached on Debian 13 (read in trixie's packages, systemd 257.13, dracut
106, linux-base 4.12): `kernel-install` is /usr/bin/kernel-install in the `systemd` package, with
plugins 50-depmod, 55-initrd, 90-loaderentry, 90-uki-copy (systemd) and 50-dracut,
51-dracut-rescue (dracut-core) in /usr/lib/kernel/install.d; `kernel-install add` runs them all,
whatever else is installed. The kernel package's postinst does NOT call kernel-install: it runs
`linux-run-hooks image postinst`, i.e. run-parts of /etc/kernel/postinst.d, where dracut's hook
calls dracut directly (writing /boot/initrd.img-KVER) and systemd-boot's `zz-systemd-boot` calls
`kernel-install add KVER IMAGE` only when `bootctl is-installed` (systemd-boot on the ESP; never
here). Fedora's kernel-core %posttrans calls `kernel-install add` itself: `add_kernel_install_hooks`
models that on this image, on request. Layout: /usr/lib/kernel/install.conf sets nothing, so
kernel-install picks `other` unless $BOOT/loader/entries.srel or $BOOT/<entry-token> exists.

This lab's host kernel (6.18, not Debian's) has ext4 and btrfs but no vfat and no GPT partition
parser: `attached` adds the partitions with partx, and where vfat cannot be mounted `mounted`
stages the ESP on a tmpfs through mtools (written back on unmount if changed). In the chroot
/boot/efi is then not a vfat mount, so bootctl and kernel-install do not see an ESP there.

The cache: $AOELAB_CACHE, else /var/cache/aoelab. debs/<suite>/ holds each suite's kernel .debs
(fetched once with a private apt state in apt/<suite>/), trees/ the tarballs, named
debian-trixie-linux-<kernel version>-<key>.tar where the key hashes the whole mmdebstrap argv
(suite, mirrors, PACKAGES, dpkg excludes, hooks, the kernel .deb names) and the source text of
the function that writes it. Builders of the same file wait on a lock beside it.

Tarballs hold packages only; identity (hostname, machine-id, fstab) is written by `make_disk`, so
changing it never rebuilds the tree. No initramfs-tools: dracut is the initramfs generator and
the tree's /boot/initrd.img-KVER is dracut's stock, generic (non-hostonly) image.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import inspect
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from aoelab import lvmdisk

if TYPE_CHECKING:
    from aoelab.vm import VM

REPO = Path(__file__).resolve().parent.parent
CACHE_ENV = "AOELAB_CACHE"
DEFAULT_CACHE = Path("/var/cache/aoelab")

MIRROR = "http://deb.debian.org/debian"
SECURITY_MIRROR = "http://deb.debian.org/debian-security"
SUITE = "trixie"
OLD_SUITE = "bookworm"
KERNEL_META = "linux-image-amd64"

# What the tree is made of. The kernel comes as .deb files (see kernel_debs), not from here.
PACKAGES = (
    "systemd",
    "systemd-sysv",
    "udev",
    "dbus",
    "kmod",
    "util-linux",
    "procps",
    "iproute2",
    "dracut",
    "dracut-network",
    "zstd",
    "btrfs-progs",
    "e2fsprogs",
    "dosfstools",
    "network-manager",
    "aoetools",
    "python3",
    "python3-click",
    "python3-pyudev",
    "python3-systemd",
    "systemd-boot",
    "systemd-boot-efi",
    "initramfs-tools-",  # apt's "must not be installed": dracut is the initramfs generator
)
# Smaller tree, faster unpacking; dpkg keeps these settings in the image.
DPKG_EXCLUDES = ("/usr/share/man/*", "/usr/share/locale/*", "/usr/share/doc/*")

HOSTNAME = "aoebox"
MACHINE_ID = "a0e0b0070000400080000000000000a0"  # fixed: boot entry names stay the same

# The disk. GUIDs as sfdisk takes them; filesystem UUIDs as mkfs takes them.
DISK_GUID = "A0E0B007-0000-4000-8000-0000000000D0"
ESP_PARTUUID = "A0E0B007-0000-4000-8000-0000000000E1"
BOOT_PARTUUID = "A0E0B007-0000-4000-8000-0000000000B2"
ROOT_PARTUUID = "A0E0B007-0000-4000-8000-0000000000C3"
ESP_UUID = "A0E0-B001"  # vfat volume id; fstab and by-uuid write it like this
BOOT_UUID = "a0e0b007-0000-4000-8000-000000000b00"
ROOT_UUID = "a0e0b007-0000-4000-8000-000000000f00"  # the btrfs filesystem (root and home)
ROOT_LABEL = "aoebox"
ESP_TYPE = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
# Anaconda's /boot and btrfs partitions: "Linux filesystem" (not the discoverable root type, so
# systemd-gpt-auto-generator leaves them alone).
LINUX_TYPE = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
ESP_MIB = 600  # as Anaconda makes it: a kernel and its initramfs fit when the ESP is $BOOT
BOOT_MIB = 512  # two kernels with their generic dracut images fit
DEFAULT_SIZE = 4 << 30
ROOT_SUBVOL = "root"
HOME_SUBVOL = "home"
BTRFS_OPTIONS = "compress=zstd:1"

# Fedora Server's disk (SERVER): the ESP and the partition GUIDs as above; /boot is xfs, p3 an
# LVM PV whose one LV holds / (xfs).
LVM_TYPE = "E6D6D379-F507-44C2-A23C-238F2A3DF928"  # "Linux LVM": what blivet gives a PV
SERVER_BOOT_MIB = 1024  # Anaconda's /boot on Server
SERVER_BOOT_UUID = "a0e0b007-0000-4000-8000-000000005b00"  # xfs
SERVER_ROOT_UUID = "a0e0b007-0000-4000-8000-000000005f00"  # the xfs in LV fedora/root
SERVER_VOLUME = lvmdisk.Volume(
    vg="fedora",
    lv="root",
    pv_uuid="a0e0b0-0700-4000-8000-0000-0000-00pv03",
    vg_uuid="a0e0b0-0700-4000-8000-0000-0000-00vg00",
    lv_uuid="a0e0b0-0700-4000-8000-0000-0000-00lv00",
)

# The data volume (served later as e11.1).
DATA_UUID = "a0e0b007-0000-4000-8000-00000000da7a"
DATA_PARTUUID = "A0E0B007-0000-4000-8000-0000000000DA"
DATA_LABEL = "aoedata"
DATA_MOUNTPOINT = "/srv/data"

CHROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class SysImageError(RuntimeError):
    """A step of building or using the image failed; the message says which and why."""


# ---------------------------------------------------------------- running programs


def run(argv: Sequence[str | Path], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
    """Run `argv` (a list, never a shell string); raise SysImageError with its stderr."""
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    proc = subprocess.run([str(a) for a in argv], **kwargs)
    if proc.returncode != 0:
        err = proc.stderr if isinstance(proc.stderr, str) else ""
        raise SysImageError(
            f"{' '.join(map(str, argv))} failed ({proc.returncode}): {err.strip()[-2000:]}"
        )
    return proc


# ---------------------------------------------------------------- the cache


def cache_dir() -> Path:
    """$AOELAB_CACHE or /var/cache/aoelab, created."""
    path = Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock next to `path`, so two builders of the same thing wait for each other."""
    lock = path.with_name(path.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


# ---------------------------------------------------------------- kernel .debs


@dataclass(frozen=True)
class KernelDebs:
    """A Debian kernel as .deb files in the cache: `dpkg -i *debs` installs it."""

    version: str  # the kernel release, e.g. 6.12.118+deb13-amd64
    image: Path  # linux-image-<version>_*.deb
    meta: Path  # linux-image-amd64_*.deb, depends on exactly `image`

    @property
    def debs(self) -> list[Path]:
        return [self.image, self.meta]


def _sources(suite: str) -> list[str]:
    return [
        f"deb {MIRROR} {suite} main",
        f"deb {MIRROR} {suite}-updates main",
        f"deb {SECURITY_MIRROR} {suite}-security main",
    ]


def _apt(suite: str, cache: Path) -> list[str]:
    """apt-get/apt-cache options for a private apt state for `suite` (host's apt untouched)."""
    root = cache / "apt" / suite
    for sub in (
        "etc/apt/apt.conf.d",
        "etc/apt/preferences.d",
        "etc/apt/sources.list.d",
        "var/lib/apt/lists/partial",
        "var/cache/apt/archives/partial",
        "var/lib/dpkg",
    ):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "var/lib/dpkg/status").touch()
    keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
    (root / "etc/apt/sources.list").write_text(
        "".join(
            line.replace("deb ", f"deb [signed-by={keyring}] ", 1) + "\n"
            for line in _sources(suite)
        )
    )
    return [
        "-q",
        "-o",
        f"Dir={root}",
        "-o",
        f"Dir::State::status={root}/var/lib/dpkg/status",
        "-o",
        "APT::Architecture=amd64",
        "-o",
        "APT::Sandbox::User=root",
        "-o",
        "Acquire::Languages=none",
    ]


def kernel_debs(suite: str = SUITE, cache: Path | None = None) -> KernelDebs:
    """The .debs of `suite`'s current linux-image-amd64, downloaded on the first call only (the
    cached files are reused as they are, even after the archive moved on)."""
    where = (cache or cache_dir()) / "debs" / suite
    with _locked(where):
        found = _cached_kernel_debs(where)
        if found is None:
            found = _download_kernel_debs(suite, where, cache or cache_dir())
    return found


def _cached_kernel_debs(where: Path) -> KernelDebs | None:
    metas = sorted(where.glob(f"{KERNEL_META}_*.deb"))
    images = [p for p in where.glob("linux-image-*.deb") if not p.name.startswith(KERNEL_META)]
    if len(metas) != 1 or len(images) != 1:
        return None
    version = images[0].name.split("_")[0][len("linux-image-") :]
    return KernelDebs(version, images[0], metas[0])


def _download_kernel_debs(suite: str, where: Path, cache: Path) -> KernelDebs:
    apt = _apt(suite, cache)
    run(["apt-get", *apt, "update"])
    show = run(["apt-cache", *apt, "show", "--no-all-versions", KERNEL_META]).stdout
    match = re.search(r"^Depends:.*?\b(linux-image-(\S+?-amd64))\b", show, re.M)
    if match is None:
        raise SysImageError(f"{suite}: cannot tell which kernel {KERNEL_META} depends on:\n{show}")
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir(parents=True)
    run(["apt-get", *apt, "download", KERNEL_META, match.group(1)], cwd=where)
    found = _cached_kernel_debs(where)
    if found is None:
        raise SysImageError(f"{suite}: kernel .debs missing after download in {where}")
    return found


# ---------------------------------------------------------------- the base tree


def _mmdebstrap_argv(kernel: KernelDebs, out: Path) -> list[str]:
    """The whole recipe of a tree: its text and its inputs make the cache key."""
    argv = [
        "mmdebstrap",
        "--mode=root",
        "--variant=apt",
        "--format=tar",
        '--aptopt=Acquire::Languages "none"',
        # makes the kernel .debs given by path visible to dpkg inside the chroot
        "--hook-dir=/usr/share/mmdebstrap/hooks/file-mirror-automount",
        "--hook-dir=/usr/share/mmdebstrap/hooks/eatmydata",  # no fsync per file
        "--include=" + ",".join(PACKAGES),
    ]
    argv += [f"--dpkgopt=path-exclude={pattern}" for pattern in DPKG_EXCLUDES]
    argv += ["--dpkgopt=path-include=/usr/share/doc/*/copyright"]
    argv += [f"--include={deb}" for deb in kernel.debs]
    return argv + [SUITE, str(out), *_sources(SUITE)]


def tree_name(kernel: str = SUITE, cache: Path | None = None) -> str:
    """The cache file name of the tree with `kernel` (a suite name): its key."""
    debs = kernel_debs(kernel, cache)
    recipe = _mmdebstrap_argv(debs, Path("OUT"))
    recipe = [a.replace(str(debs.image.parent), "DEBS") for a in recipe]
    key = _digest(recipe, inspect.getsource(_mmdebstrap_argv))
    return f"debian-{SUITE}-linux-{debs.version}-{key}.tar"


def base_tree(kernel: str = SUITE, cache: Path | None = None) -> Path:
    """The tarball of a Debian trixie tree with `kernel`'s linux-image installed ('trixie': 6.12,
    'bookworm': 6.1), built by mmdebstrap on the first call (minutes), reused after (seconds)."""
    cache = cache or cache_dir()
    trees = cache / "trees"
    trees.mkdir(exist_ok=True)
    tarball = trees / tree_name(kernel, cache)
    with _locked(tarball):
        if not tarball.exists():
            _build_tree(kernel_debs(kernel, cache), tarball)
    return tarball


def _build_tree(kernel: KernelDebs, tarball: Path) -> None:
    partial = tarball.with_name(tarball.name + ".partial")
    log = tarball.with_name(tarball.name + ".log")
    with open(log, "w") as handle:
        proc = subprocess.run(
            _mmdebstrap_argv(kernel, partial),
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    if proc.returncode != 0:
        partial.unlink(missing_ok=True)
        tail = log.read_text(errors="replace")[-3000:]
        raise SysImageError(f"mmdebstrap failed ({proc.returncode}); log {log}:\n{tail}")
    os.replace(partial, tarball)


# ---------------------------------------------------------------- minimal trees


def _minimal_argv(packages: Sequence[str], kernel: KernelDebs, out: Path) -> list[str]:
    """A tree of exactly `packages` and what they depend on (no Recommends: mmdebstrap installs
    none), over the `apt` variant (Essential packages and apt only), plus the kernel .debs; no
    initramfs-tools, so the kernel's initramfs tool is dracut if `packages` bring it."""
    argv = [
        "mmdebstrap",
        "--mode=root",
        "--variant=apt",
        "--format=tar",
        '--aptopt=Acquire::Languages "none"',
        "--hook-dir=/usr/share/mmdebstrap/hooks/file-mirror-automount",
        "--hook-dir=/usr/share/mmdebstrap/hooks/eatmydata",
        "--include=" + ",".join([*packages, "initramfs-tools-"]),
    ]
    argv += [f"--dpkgopt=path-exclude={pattern}" for pattern in DPKG_EXCLUDES]
    argv += ["--dpkgopt=path-include=/usr/share/doc/*/copyright"]
    argv += [f"--include={deb}" for deb in kernel.debs]
    return argv + [SUITE, str(out), *_sources(SUITE)]


def minimal_tree_name(
    packages: Sequence[str],
    kernel: str = SUITE,
    cache: Path | None = None,
    flavour: str = "minimal",
) -> str:
    """The cache file name of minimal_tree(packages, kernel): its key, as tree_name's.
    `flavour` only names the file (the packages are in the key)."""
    debs = kernel_debs(kernel, cache)
    recipe = _minimal_argv(packages, debs, Path("OUT"))
    recipe = [a.replace(str(debs.image.parent), "DEBS") for a in recipe]
    key = _digest(recipe, inspect.getsource(_minimal_argv))
    return f"debian-{SUITE}-{flavour}-linux-{debs.version}-{key}.tar"


def minimal_tree(
    packages: Sequence[str],
    kernel: str = SUITE,
    cache: Path | None = None,
    flavour: str = "minimal",
) -> Path:
    """The tarball of a trixie tree holding only `packages` (Debian names) with their
    dependencies and `kernel`'s linux-image: what a package's Requires alone bring to a system.
    Built on the first call (a minute or two), reused after; cached beside base_tree's trees,
    named by `flavour`."""
    cache = cache or cache_dir()
    trees = cache / "trees"
    trees.mkdir(exist_ok=True)
    tarball = trees / minimal_tree_name(packages, kernel, cache, flavour)
    with _locked(tarball):
        if not tarball.exists():
            _mmdebstrap(
                _minimal_argv(
                    packages,
                    kernel_debs(kernel, cache),
                    tarball.with_name(tarball.name + ".partial"),
                ),
                tarball,
            )
    return tarball


# Fedora Server's tree: the base tree's packages and what its disk needs (the LVM tools, so the
# image's dracut adds 90lvm; xfsprogs, so the box can check and grow its filesystems).
SERVER_PACKAGES = (*(p for p in PACKAGES if not p.endswith("-")), "lvm2", "xfsprogs")


def server_tree_name(kernel: str = SUITE, cache: Path | None = None) -> str:
    """The cache file name of server_tree(kernel): its own key, never the base tree's."""
    return minimal_tree_name(SERVER_PACKAGES, kernel, cache, flavour="server")


def server_tree(kernel: str = SUITE, cache: Path | None = None) -> Path:
    """The tarball of the Server layout's tree: base_tree's packages plus lvm2 and xfsprogs,
    built as minimal_tree builds (mmdebstrap installs no Recommends either way, and excludes
    initramfs-tools here too), so both trees have the same recipe but for those two."""
    return minimal_tree(SERVER_PACKAGES, kernel, cache, flavour="server")


def _mmdebstrap(argv: Sequence[str], tarball: Path) -> None:
    """Run an mmdebstrap `argv` that writes `tarball`.partial; rename it to `tarball` on success,
    the log kept beside it."""
    partial = tarball.with_name(tarball.name + ".partial")
    log = tarball.with_name(tarball.name + ".log")
    with open(log, "w") as handle:
        proc = subprocess.run(
            list(argv), stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    if proc.returncode != 0:
        partial.unlink(missing_ok=True)
        tail = log.read_text(errors="replace")[-3000:]
        raise SysImageError(f"mmdebstrap failed ({proc.returncode}); log {log}:\n{tail}")
    os.replace(partial, tarball)


def _mounts_under(path: Path) -> list[str]:
    """Mount points at or below `path` (from /proc/self/mounts, octal escapes undone)."""
    top = str(path.resolve())
    points = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[1])
        if point == top or point.startswith(top + "/"):
            points.append(point)
    return points


@contextlib.contextmanager
def unpacked(tarball: Path, where: Path | None = None) -> Iterator[Path]:
    """A tree tarball (base_tree, minimal_tree) extracted into a fresh directory (`where`, else a
    temporary one) and removed after. A plain directory serves chroot_run and install_aoeboot as
    a mounted disk does, minus the disk: for what needs no boot, partitions or fstab."""
    target = where or Path(tempfile.mkdtemp(prefix="tree."))
    target.mkdir(parents=True, exist_ok=True)
    try:
        run(
            [
                "tar",
                "--numeric-owner",
                "--xattrs",
                "--xattrs-include=*",
                "-xpf",
                str(tarball),
                "-C",
                str(target),
            ]
        )
        yield target
    finally:
        left = _mounts_under(target)
        if left:  # never delete through a bind mount of the host's /dev or /sys
            raise SysImageError(f"{target}: still mounted there, not removed: {left}")
        run(["rm", "-rf", "--one-file-system", str(target)])


# ---------------------------------------------------------------- loop devices and mounts


@contextlib.contextmanager
def attached(image: Path, read_only: bool = False) -> Iterator[str]:
    """`image` on a loop device with its partitions (/dev/loopNpM); yields /dev/loopN."""
    argv = ["losetup", "--find", "--show", "--partscan"] + (["--read-only"] if read_only else [])
    loop = run([*argv, str(image)]).stdout.strip()
    try:
        _wait_for_partitions(loop)
        yield loop
    finally:
        # partitions partx added can outlive the loop device: remove them first
        subprocess.run(["partx", "--delete", loop], capture_output=True)
        run(["losetup", "--detach", loop])


def _wait_for_partitions(loop: str) -> None:
    """The kernel adds the partition nodes a moment after losetup returns. Kernels built without
    a GPT parser (this lab's host: no CONFIG_EFI_PARTITION) add none: partx reads the table
    itself and adds them (`attached` deletes them again: they outlive the loop device)."""
    if _partitions_appear(loop, timeout=0.2):
        return
    run(["partx", "--add", loop])
    if not _partitions_appear(loop, timeout=10.0):
        raise SysImageError(f"{loop}: no partition device nodes, even after partx --add")


def _partitions_appear(loop: str, timeout: float) -> bool:
    sysfs = Path("/sys/class/block") / Path(loop).name
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        parts = [p.name for p in sysfs.glob(f"{sysfs.name}p*")]
        if parts and all(Path("/dev", name).exists() for name in parts):
            return True
        time.sleep(0.05)
    return False


@contextlib.contextmanager
def _mount(source: str, point: Path, options: str = "", fstype: str = "") -> Iterator[Path]:
    argv = ["mount"] + (["-t", fstype] if fstype else []) + (["-o", options] if options else [])
    run([*argv, source, str(point)])
    try:
        yield point
    finally:
        _umount(point)


def _umount(point: Path, tries: int = 20) -> None:
    # a process that just left the chroot may hold it for a moment: retry before failing
    for _attempt in range(tries):
        proc = subprocess.run(["umount", str(point)], capture_output=True, text=True)
        if proc.returncode == 0:
            return
        time.sleep(0.25)
    raise SysImageError(f"umount {point} failed: {proc.stderr.strip()}")


@dataclass(frozen=True)
class Mount:
    """One line of the installed system's fstab, and the partition that holds it."""

    partition: int  # on the system disk (for an LV: its PV's)
    source: str  # fstab's first field: UUID=... or a device
    mountpoint: str
    fstype: str
    options: str  # as the installer writes them in fstab
    dump: int
    passno: int

    def line(self) -> str:
        return (
            f"{self.source} {self.mountpoint} {self.fstype} {self.options} {self.dump} "
            f"{self.passno}"
        )


LAYOUT = (  # WORKSTATION's, in mount order
    Mount(3, f"UUID={ROOT_UUID}", "/", "btrfs", f"subvol={ROOT_SUBVOL},{BTRFS_OPTIONS}", 0, 0),
    Mount(2, f"UUID={BOOT_UUID}", "/boot", "ext4", "defaults", 1, 2),
    Mount(1, f"UUID={ESP_UUID}", "/boot/efi", "vfat", "umask=0077,shortname=winnt", 0, 2),
    Mount(3, f"UUID={ROOT_UUID}", "/home", "btrfs", f"subvol={HOME_SUBVOL},{BTRFS_OPTIONS}", 0, 0),
)
FS_UUIDS = {1: ESP_UUID, 2: BOOT_UUID, 3: ROOT_UUID}
# Anaconda's fstab on Server: xfs is never checked at boot (passno 0), / is named by its LV.
SERVER_MOUNTS = (
    Mount(3, SERVER_VOLUME.mapper, "/", "xfs", "defaults", 0, 0),
    Mount(2, f"UUID={SERVER_BOOT_UUID}", "/boot", "xfs", "defaults", 0, 0),
    Mount(1, f"UUID={ESP_UUID}", "/boot/efi", "vfat", "umask=0077,shortname=winnt", 0, 2),
)
# Options that keep a read-only mount from writing: no journal or log replay.
READ_ONLY = {
    "ext4": "ro,noload",
    "btrfs": "ro,rescue=nologreplay",
    "vfat": "ro",
    "xfs": "ro,norecovery",
}
# What the host adds to its own mounts: xfs refuses a second filesystem with a UUID already
# mounted, and every Server image has the same ones.
HOST_OPTIONS = {"xfs": "nouuid"}


@contextlib.contextmanager
def _partition_devices(loop: str, read_only: bool) -> Iterator[dict[int, str]]:
    """Each partition's filesystem is on the partition itself."""
    yield {n: f"{loop}p{n}" for n in (1, 2, 3)}


@contextlib.contextmanager
def _server_devices(loop: str, read_only: bool) -> Iterator[dict[int, str]]:
    """p3's filesystem is in the LV on it, reached through a loop device over its extents."""
    with lvmdisk.attached_lv(f"{loop}p3", SERVER_VOLUME, read_only) as lv:
        yield {1: f"{loop}p1", 2: f"{loop}p2", 3: lv}


def _make_esp(loop: str) -> None:
    run(["mkfs.vfat", "-F", "32", "-i", ESP_UUID.replace("-", ""), f"{loop}p1"])


def _make_filesystems(loop: str) -> None:
    _make_esp(loop)
    run(["mkfs.ext4", "-q", "-F", "-U", BOOT_UUID, f"{loop}p2"])
    run(["mkfs.btrfs", "-q", "-f", "-U", ROOT_UUID, "-L", ROOT_LABEL, f"{loop}p3"])
    with tempfile.TemporaryDirectory(prefix="btrfs-top.") as top:
        # the top level (subvolid 5) stays the default subvolume, as on Fedora
        with _mount(f"{loop}p3", Path(top), "subvolid=5", "btrfs"):
            for name in (ROOT_SUBVOL, HOME_SUBVOL):
                run(["btrfs", "-q", "subvolume", "create", f"{top}/{name}"])


def _make_server_filesystems(loop: str) -> None:
    _make_esp(loop)
    run(["mkfs.xfs", "-q", "-f", "-m", f"uuid={SERVER_BOOT_UUID}", f"{loop}p2"])
    lvmdisk.create(f"{loop}p3", SERVER_VOLUME)
    with lvmdisk.attached_lv(f"{loop}p3", SERVER_VOLUME) as lv:
        run(["mkfs.xfs", "-q", "-f", "-m", f"uuid={SERVER_ROOT_UUID}", lv])


@dataclass(frozen=True)
class Layout:
    """How one of Fedora's installers lays out the system disk: GPT with the ESP as p1, /boot
    as p2 (`boot_mib`), the rest p3 (`root_type`); what goes on them and how the system finds
    them again."""

    name: str
    boot_mib: int
    root_type: str  # p3's GPT partition type
    mounts: tuple[Mount, ...]  # fstab, in mount order
    cmdline: str  # /etc/kernel/cmdline: what the boot loader's config leaves there
    tree: Callable[[str, Path | None], Path]  # (kernel, cache) -> the tree's tarball
    make_filesystems: Callable[[str], None]  # on the partitioned /dev/loopN
    # (/dev/loopN, read_only) -> the device that holds each partition's filesystem
    devices: Callable[[str, bool], contextlib.AbstractContextManager[dict[int, str]]]


ROOT_CMDLINE = f"root=UUID={ROOT_UUID} ro rootflags=subvol={ROOT_SUBVOL}"
SERVER_CMDLINE = f"root={SERVER_VOLUME.mapper} ro rd.lvm.lv={SERVER_VOLUME.vg}/{SERVER_VOLUME.lv}"

WORKSTATION = Layout(
    "workstation",
    BOOT_MIB,
    LINUX_TYPE,
    LAYOUT,
    ROOT_CMDLINE,
    base_tree,
    _make_filesystems,
    _partition_devices,
)
SERVER = Layout(
    "server",
    SERVER_BOOT_MIB,
    LVM_TYPE,
    SERVER_MOUNTS,
    SERVER_CMDLINE,
    server_tree,
    _make_server_filesystems,
    _server_devices,
)
LAYOUTS = (WORKSTATION, SERVER)


def layout_of(image: Path) -> Layout:
    """The layout of the system disk `image`, told by p3's partition type."""
    table = json.loads(run(["sfdisk", "--json", str(image)]).stdout)["partitiontable"]
    parts = table.get("partitions", [])
    found = [
        layout
        for layout in LAYOUTS
        if len(parts) == 3 and parts[2]["type"].upper() == layout.root_type
    ]
    if not found:
        raise SysImageError(f"{image}: not a system disk of a known layout: {parts}")
    return found[0]


def fstab(extra: str | None = None, layout: Layout = WORKSTATION) -> str:
    """/etc/fstab as Anaconda writes it for `layout` (plus `extra` lines)."""
    by_uuid = all(mount.source.startswith("UUID=") for mount in layout.mounts)
    lines = [
        "# /etc/fstab: written by aoelab.sysimage like Anaconda's"
        + (", by UUID" if by_uuid else "")
    ]
    lines += [mount.line() for mount in layout.mounts]
    text = "\n".join(lines) + "\n"
    return text + (extra.rstrip("\n") + "\n" if extra else "")


@contextlib.contextmanager
def mounted(
    image: Path, read_only: bool = False, where: Path | None = None, layout: Layout | None = None
) -> Iterator[Path]:
    """The system on `image` mounted like the installer's /mnt/sysimage: the root filesystem
    (WORKSTATION: its root subvolume) at the top, /boot, /boot/efi (and /home) inside. Yields
    the path; unmounts and detaches after. read_only: mounted without replaying journals, so a
    dirty image stays as it is. `layout`: the disk's own (layout_of) unless given."""
    layout = layout or layout_of(image)
    target = where or Path(tempfile.mkdtemp(prefix="sysimage."))
    try:
        with attached(image, read_only) as loop, contextlib.ExitStack() as stack:
            devices = stack.enter_context(layout.devices(loop, read_only))
            for mount in layout.mounts:
                point = target / mount.mountpoint.lstrip("/")
                if not read_only:
                    point.mkdir(parents=True, exist_ok=True)
                options = mount.options.replace("defaults", "").strip(",")
                if read_only:
                    options = ",".join(
                        filter(
                            None,
                            [READ_ONLY[mount.fstype]]
                            + [o for o in options.split(",") if o.startswith("subvol=")],
                        )
                    )
                options = ",".join(filter(None, [options, HOST_OPTIONS.get(mount.fstype)]))
                device = devices[mount.partition]
                if mount.fstype == "vfat" and not kernel_has_vfat():
                    stack.enter_context(_staged_vfat(device, point, read_only))
                else:
                    stack.enter_context(_mount(device, point, options, mount.fstype))
            yield target
    finally:
        if where is None:
            target.rmdir()


@functools.cache
def kernel_has_vfat() -> bool:
    """Whether this kernel mounts vfat (the lab's host kernel has neither vfat nor a module)."""
    subprocess.run(["modprobe", "-q", "vfat"], capture_output=True)
    return "\tvfat\n" in Path("/proc/filesystems").read_text()


MTOOLS_ENV = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}  # no complaints about odd geometry


@contextlib.contextmanager
def _staged_vfat(device: str, point: Path, read_only: bool) -> Iterator[Path]:
    """The ESP where the kernel cannot mount vfat: its files copied out with mtools onto a tmpfs
    at `point`, and, if anything changed there, written back to a freshly made filesystem (same
    volume id) when the mount ends. Not a vfat mount: bootctl and kernel-install, which check
    the filesystem type, do not take it for an ESP."""
    with _mount("tmpfs", point, "mode=0700", "tmpfs"):
        top = run(["mdir", "-b", "-i", device, "::/"], env=MTOOLS_ENV).stdout.split()
        if top:
            run(["mcopy", "-s", "-p", "-m", "-n", "-i", device, *top, str(point)], env=MTOOLS_ENV)
        before = _snapshot(point)
        yield point
        if not read_only and _snapshot(point) != before:
            run(["mkfs.vfat", "-F", "32", "-i", ESP_UUID.replace("-", ""), device])
            entries = sorted(str(p) for p in point.iterdir())
            if entries:
                run(["mcopy", "-s", "-p", "-m", "-i", device, *entries, "::/"], env=MTOOLS_ENV)


def _snapshot(root: Path) -> dict[str, str]:
    """Every path under `root` with a hash of its content ('' for directories)."""
    return {
        str(p.relative_to(root)): "" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
    }


@contextlib.contextmanager
def chroot_mounts(target: Path) -> Iterator[None]:
    """/proc, /sys, /dev (with /dev/pts) and an empty /run for a chrooted command; an empty /run
    also tells maintainer scripts that systemd does not run there, so they start no daemons."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(_mount("proc", target / "proc", fstype="proc"))
        stack.enter_context(_mount("/sys", target / "sys", "bind"))
        stack.enter_context(_mount("/dev", target / "dev", "bind"))
        stack.enter_context(_mount("/dev/pts", target / "dev/pts", "bind"))
        stack.enter_context(_mount("tmpfs", target / "run", "mode=0755", "tmpfs"))
        yield


def chroot_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """A clean environment for the image's programs (nothing of the host's venv or PATH)."""
    base = {
        "PATH": CHROOT_PATH,
        "LANG": "C.UTF-8",
        "HOME": "/root",
        "DEBIAN_FRONTEND": "noninteractive",
    }
    return {**base, **(env or {})}


def chroot_run(
    target: Path,
    argv: Sequence[str],
    env: Mapping[str, str] | None = None,
    check: bool = True,
    **kwargs: Any,
) -> subprocess.CompletedProcess[str]:
    """Run `argv` chrooted into the mounted `target` with /proc, /sys, /dev and /run mounted for
    the duration. Output is captured as text; with `check`, a failure raises SysImageError."""
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    with chroot_mounts(target):
        proc = subprocess.run(
            ["chroot", str(target), *map(str, argv)], env=chroot_env(env), **kwargs
        )
    if check and proc.returncode != 0:
        raise SysImageError(
            f"in {target}: {' '.join(map(str, argv))} failed "
            f"({proc.returncode}): {(proc.stderr or '').strip()[-2000:]}"
        )
    return proc


# ---------------------------------------------------------------- the system disk


def _partition(image: Path, size: int, layout: Layout) -> None:
    with open(image, "wb") as handle:
        handle.truncate(size)
    script = (
        f"label: gpt\nlabel-id: {DISK_GUID}\n"
        f"start=2048, size={ESP_MIB}MiB, type={ESP_TYPE}, uuid={ESP_PARTUUID}, "
        'name="EFI System Partition"\n'
        f"size={layout.boot_mib}MiB, type={LINUX_TYPE}, uuid={BOOT_PARTUUID}\n"
        f"type={layout.root_type}, uuid={ROOT_PARTUUID}\n"
    )
    run(["sfdisk", "-q", str(image)], input=script)


def _write_identity(target: Path, extra_fstab: str | None, layout: Layout) -> None:
    etc = target / "etc"
    (etc / "hostname").write_text(f"{HOSTNAME}\n")
    (etc / "hosts").write_text(
        f"127.0.0.1\tlocalhost\n127.0.1.1\t{HOSTNAME}\n::1\tlocalhost ip6-localhost ip6-loopback\n"
    )
    (etc / "machine-id").write_text(f"{MACHINE_ID}\n")
    (etc / "fstab").write_text(fstab(extra_fstab, layout))
    # what Anaconda leaves for kernel-install (90-loaderentry, 50-dracut read it)
    (etc / "kernel").mkdir(exist_ok=True)
    (etc / "kernel/cmdline").write_text(f"{layout.cmdline}\n")
    for line in (extra_fstab or "").splitlines():
        fields = line.split()
        if len(fields) >= 2 and not line.lstrip().startswith("#"):
            (target / fields[1].lstrip("/")).mkdir(parents=True, exist_ok=True)


def make_disk(
    tree_tarball: Path,
    image_path: Path,
    size: int = DEFAULT_SIZE,
    extra_fstab: str | None = None,
    layout: Layout = WORKSTATION,
) -> Path:
    """A raw GPT disk `image_path` of `size` bytes (sparse): the tree installed on Anaconda's
    `layout`, fstab as Anaconda writes it (plus `extra_fstab`, e.g. data_fstab_line()),
    hostname, machine-id and /etc/kernel/cmdline written. Returns `image_path`."""
    _partition(image_path, size, layout)
    with attached(image_path) as loop:
        layout.make_filesystems(loop)
    with mounted(image_path, layout=layout) as target:
        run(
            [
                "tar",
                "--numeric-owner",
                "--xattrs",
                "--xattrs-include=*",
                "-xpf",
                str(tree_tarball),
                "-C",
                str(target),
            ]
        )
        _write_identity(target, extra_fstab, layout)
    return image_path


def data_fstab_line(mountpoint: str = DATA_MOUNTPOINT, uuid: str = DATA_UUID) -> str:
    """fstab line for the data volume. `_netdev`: the disk comes over the network, so systemd
    orders it after the network and unmounts it before the network goes down at shutdown.
    `nofail`: a NAS that does not export it (or a missing by-uuid link for etherd disks) leaves
    /srv/data unmounted instead of holding the boot 90 s and dropping into emergency mode; tests
    check the mount itself."""
    return f"UUID={uuid} {mountpoint} ext4 defaults,_netdev,nofail 0 2"


def make_data_disk(
    image: Path, size: int = 256 << 20, uuid: str = DATA_UUID, label: str = DATA_LABEL
) -> Path:
    """A second disk: GPT with one ext4 partition (fixed UUID and label) from 1 MiB to the end."""
    with open(image, "wb") as handle:
        handle.truncate(size)
    run(
        ["sfdisk", "-q", str(image)],
        input=f"label: gpt\nstart=2048, type={LINUX_TYPE}, uuid={DATA_PARTUUID}\n",
    )
    start = 2048 * 512
    end = size - (1 << 20)  # the backup GPT lives in the last sectors
    run(
        [
            "mkfs.ext4",
            "-q",
            "-F",
            "-U",
            uuid,
            "-L",
            label,
            "-E",
            f"offset={start}",
            str(image),
            f"{(end - start) // 1024}k",
        ]
    )
    return image


def system_image(
    dest: Path,
    kernel: str = SUITE,
    extra_fstab: str | None = None,
    size: int = DEFAULT_SIZE,
    cache: Path | None = None,
    layout: Layout = WORKSTATION,
) -> Path:
    """A fresh system disk at `dest`: make_disk of `layout`'s tree with `kernel` (base_tree for
    WORKSTATION; the tree is cached; the disk takes seconds, so it is not)."""
    return make_disk(layout.tree(kernel, cache), dest, size, extra_fstab, layout)


def server_image(
    dest: Path,
    kernel: str = SUITE,
    extra_fstab: str | None = None,
    size: int = DEFAULT_SIZE,
    cache: Path | None = None,
) -> Path:
    """system_image with Fedora Server's layout (SERVER): / on LV fedora/root, p3 its PV."""
    return system_image(dest, kernel, extra_fstab, size, cache, SERVER)


def boot_kernels(target: Path) -> list[str]:
    """Kernel versions with a /boot/vmlinuz-KVER in the mounted `target`, oldest first."""
    versions = [p.name[len("vmlinuz-") :] for p in (target / "boot").glob("vmlinuz-*")]
    return sorted(versions, key=_version_key)


def _version_key(version: str) -> list[object]:
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"[.+~-]", version)]


# ---------------------------------------------------------------- our package in the image


def build_wheel(out: Path) -> Path:
    """A wheel of the working tree's aoeboot (built from a copy, so no build/ in the checkout)."""
    import sys

    with tempfile.TemporaryDirectory(prefix="aoeboot-src.") as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        shutil.copytree(
            REPO / "aoeboot", src / "aoeboot", ignore=shutil.ignore_patterns("__pycache__")
        )
        for name in ("pyproject.toml", "README.md", "LICENSE"):
            shutil.copy2(REPO / name, src / name)
        out.mkdir(parents=True, exist_ok=True)
        run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "-q",
                "--no-deps",
                "--no-build-isolation",
                "-w",
                str(out),
                str(src),
            ]
        )
    wheels = sorted(out.glob("aoeboot-*.whl"))
    if not wheels:
        raise SysImageError(f"pip wheel left no aoeboot wheel in {out}")
    return wheels[-1]


SITE = "usr/lib/python3/dist-packages"  # Debian's place for packaged Python modules

CONSOLE_SCRIPT = """#!/usr/bin/python3
import sys

from {module} import {function}

if __name__ == "__main__":
    sys.exit({function}())
"""


def install_aoeboot(target: Path) -> str:
    """Install the working tree's aoeboot into the mounted `target` as a package would: the wheel
    unpacked by the image's own python3 into dist-packages, /usr/bin/aoeboot, then
    tools/install-files for the dracut module, plugin, units, config, man page and completion.
    Returns what `aoeboot --version` says inside the image."""
    with tempfile.TemporaryDirectory(prefix="aoeboot-wheel.", dir=target / "var/tmp") as tmp:
        wheel = build_wheel(Path(tmp))
        for old in [*(target / SITE).glob("aoeboot"), *(target / SITE).glob("aoeboot-*-info")]:
            shutil.rmtree(old)
        inside = "/" + str(wheel.relative_to(target))
        chroot_run(target, ["python3", "-m", "zipfile", "-e", inside, "/" + SITE])
    _write_console_scripts(target)
    chroot_run(target, ["python3", "-m", "compileall", "-q", f"/{SITE}/aoeboot"])
    run([REPO / "tools/install-files", target])
    version: str = chroot_run(target, ["aoeboot", "--version"]).stdout
    return version.strip()


def package_files() -> tuple[list[str], list[str]]:
    """What tools/install-files installs, relative to the root and sorted: (files and symlinks,
    the directories it makes that hold them or nothing, i.e. the package's own directories such
    as modules.d/95aoe and /var/lib/aoeboot, not /usr or /usr/lib above them). Run into a
    temporary DESTDIR and listed."""
    with tempfile.TemporaryDirectory(prefix="aoeboot-destdir.") as tmp:
        dest = Path(tmp)
        run([REPO / "tools/install-files", dest])
        found = list(dest.rglob("*"))
        files = [p for p in found if p.is_symlink() or not p.is_dir()]
        dirs = [
            p
            for p in found
            if p.is_dir()
            and not p.is_symlink()
            and (not any(p.iterdir()) or any(f.parent == p for f in files))
        ]
        return (
            sorted(str(p.relative_to(dest)) for p in files),
            sorted(str(p.relative_to(dest)) for p in dirs),
        )


def remove_aoeboot(target: Path) -> list[str]:
    """Remove what install_aoeboot put into `target` as a package manager removes a package:
    every file tools/install-files installs, the Python package with its dist-info, the console
    scripts, then the package's own directories (package_files) left empty. What the package
    does not install stays, as dpkg or a removal by hand leaves it: the drop-in
    /etc/dracut.conf.d/90-aoeboot.conf, written by `aoeboot install-entry` (rpm removes it only
    because the spec lists it as %ghost).
    Returns the removed paths, relative to `target`."""
    import configparser

    removed = []
    parser = configparser.ConfigParser()
    for info in (target / SITE).glob("aoeboot-*.dist-info"):
        parser.read(info / "entry_points.txt")
    scripts = [
        f"usr/bin/{name}"
        for name in (
            parser.options("console_scripts") if parser.has_section("console_scripts") else []
        )
    ]
    files, dirs = package_files()
    for rel in [*scripts, *files]:
        path = target / rel
        if path.is_symlink() or path.exists():
            path.unlink()
            removed.append(rel)
    for tree in [*(target / SITE).glob("aoeboot"), *(target / SITE).glob("aoeboot-*-info")]:
        shutil.rmtree(tree)
        removed.append(str(tree.relative_to(target)))
    for rel in sorted(dirs, key=len, reverse=True):
        if (target / rel).is_dir() and not any((target / rel).iterdir()):
            (target / rel).rmdir()
            removed.append(rel)
    return removed


def _write_console_scripts(target: Path) -> None:
    import configparser

    parser = configparser.ConfigParser()
    for info in (target / SITE).glob("aoeboot-*.dist-info"):
        parser.read(info / "entry_points.txt")
    for name, ref in (
        parser.items("console_scripts") if parser.has_section("console_scripts") else []
    ):
        module, function = ref.split(":")
        script = target / "usr/bin" / name
        script.write_text(CONSOLE_SCRIPT.format(module=module, function=function))
        script.chmod(0o755)


KERNEL_HOOK = """#!/bin/sh
# aoelab: a model of Fedora's kernel-core scriptlets, which call kernel-install themselves
# (Debian's kernel packages only run dracut from /etc/kernel/postinst.d).
set -e
case "${{DEB_MAINT_PARAMS:-}}" in
    *{when}*|'') ;;
    *) exit 0 ;;
esac
exec kernel-install {command}
"""


def add_kernel_install_hooks(target: Path) -> None:
    """Make `dpkg -i linux-image-*` in `target` run `kernel-install add KVER IMAGE` (and removal
    run `kernel-install remove KVER`) as Fedora's kernel packages do. They run after Debian's
    own dracut hook, and kernel-install's 50-dracut.install then builds a second initramfs
    (into its staging area) unless masked: /etc/kernel/install.d/50-dracut.install -> /dev/null."""
    for phase, when, command in (
        ("postinst.d", "configure", 'add "$1" "$2"'),
        ("postrm.d", "remove", 'remove "$1"'),
    ):
        hook = target / "etc/kernel" / phase / "zz-aoelab-kernel-install"
        hook.parent.mkdir(parents=True, exist_ok=True)
        hook.write_text(KERNEL_HOOK.format(when=when, command=command))
        hook.chmod(0o755)


# ---------------------------------------------------------------- checks


@dataclass(frozen=True)
class FsckResult:
    """A read-only check of one filesystem of the system disk."""

    partition: int
    fstype: str
    argv: Sequence[str]
    returncode: int
    output: str

    @property
    def clean(self) -> bool:
        return self.returncode == 0


def _fsck_argv(fstype: str, device: str) -> list[str]:
    return {
        "btrfs": ["btrfs", "check", "--readonly", device],
        "ext4": ["e2fsck", "-n", "-f", device],
        "vfat": ["fsck.vfat", "-n", device],
        "xfs": ["xfs_repair", "-n", device],
    }[fstype]


def fsck(image: Path, layout: Layout | None = None) -> dict[str, FsckResult]:
    """Read-only checks of every filesystem on the (unmounted) system disk `image`, keyed by where
    the system mounts it: '/' (WORKSTATION: the btrfs volume, /home included; SERVER: the xfs in
    the LV), '/boot', '/boot/efi'. `layout`: the disk's own (layout_of) unless given."""
    layout = layout or layout_of(image)
    results: dict[str, FsckResult] = {}
    with attached(image, read_only=True) as loop, layout.devices(loop, True) as devices:
        for mount in layout.mounts:
            if any(r.partition == mount.partition for r in results.values()):
                continue  # /home: the same btrfs volume as /
            argv = _fsck_argv(mount.fstype, devices[mount.partition])
            proc = subprocess.run(argv, capture_output=True, text=True)
            results[mount.mountpoint] = FsckResult(
                mount.partition, mount.fstype, argv, proc.returncode, proc.stdout + proc.stderr
            )
    return results


# ---------------------------------------------------------------- booting it from a local disk

MULTI_USER = r"Reached target (?:\x1b\[[0-9;]*m)?multi-user\.target"  # status lines are colored
NIC_RENAMED = re.compile(r"\b(\w+): renamed from eth0\b")
LOCAL_BOOT_TIMEOUT = 300  # TCG on 2 loaded cores; a good boot takes well under half of it


@dataclass(frozen=True)
class LocalBoot:
    """What a boot of the system disk as a local virtio disk showed."""

    kernel: str  # the kernel version booted
    console: str  # the whole serial console
    multi_user: float | None  # wall seconds from qemu start to multi-user.target, if reached
    powered_off: bool  # the guest shut down by itself after the power button
    nic: str | None  # the virtio NIC's predictable name, from the console

    @property
    def ok(self) -> bool:
        return self.multi_user is not None and self.powered_off


def _boot_files(
    image: Path, kernel: str | None, workdir: Path, layout: Layout
) -> tuple[str, Path, Path]:
    """Copy vmlinuz and the stock initramfs of `kernel` (default: the newest) out of /boot."""
    with mounted(image, read_only=True, layout=layout) as target:
        kernel = kernel or boot_kernels(target)[-1]
        vmlinuz = workdir / f"vmlinuz-{kernel}"
        initrd = workdir / f"initrd.img-{kernel}"
        shutil.copyfile(target / f"boot/vmlinuz-{kernel}", vmlinuz)
        shutil.copyfile(target / f"boot/initrd.img-{kernel}", initrd)
    return kernel, vmlinuz, initrd


def monitor_command(path: Path, command: str) -> str:
    """One command to qemu's human monitor on its unix socket; what it printed back. Waits
    up to 10 s for the socket, which qemu makes as it starts."""
    deadline = time.monotonic() + 10
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(str(path))
        sock.sendall(command.encode() + b"\n")
        time.sleep(0.2)
        sock.setblocking(False)
        try:
            return sock.recv(65536).decode(errors="replace")
        except BlockingIOError:
            return ""


def boot_local(
    image: Path,
    workdir: Path,
    *,
    kernel: str | None = None,
    append: str = "",
    nic: bool = True,
    timeout: float = LOCAL_BOOT_TIMEOUT,
    layout: Layout | None = None,
) -> LocalBoot:
    """Boot the system disk `image` in qemu as a local virtio disk: its own kernel and stock
    dracut initramfs (copied out of /boot), the layout's root options (WORKSTATION: root=UUID=
    with rootflags=subvol=root; `layout`: the disk's own unless given). When
    multi-user.target is reached, press the (ACPI) power button and wait for a clean power-off.
    nic: a virtio NIC on a tap in the VM's own namespace (nothing answers there), so the
    hardware matches an AoE boot's."""
    from aoelab.netns import Namespace
    from aoelab.vm import VM

    layout = layout or layout_of(image)
    kernel, vmlinuz, initrd = _boot_files(image, kernel, workdir, layout)
    monitor = workdir / "monitor.sock"
    cmdline = f"{layout.cmdline} systemd.show_status=1 {append}".strip()
    with Namespace("aoelocal") as ns:
        if nic:
            ns.add_tap("tap0")
        vm = VM(
            ns,
            workdir / "console.log",
            kernel=vmlinuz,
            initrd=initrd,
            append=cmdline,
            tap="tap0" if nic else None,
            disk=image,
            memory=1024,
            extra=["-monitor", f"unix:{monitor},server=on,wait=off"],
        )
        with vm:
            reached = vm.wait_for(MULTI_USER, timeout)
            multi_user = vm.elapsed() if reached else None
            powered_off = reached is not None and power_off(vm, monitor)
    console = vm.text()
    renamed = NIC_RENAMED.search(console)
    return LocalBoot(
        kernel, console, multi_user, powered_off, renamed.group(1) if renamed else None
    )


def power_off(vm: VM, monitor: Path, timeout: float = 120) -> bool:
    """Press the power button (again every 15 s: logind may not watch it yet) until qemu exits;
    True for a clean exit. A monitor that is gone means qemu is going too."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            monitor_command(monitor, "system_powerdown")
        if vm.wait_exit(15) is not None:
            return vm.proc is not None and vm.proc.returncode == 0
    return False
