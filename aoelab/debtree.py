"""Debian trees as cached tarballs: made once by mmdebstrap, unpacked onto every disk after.

    base_tree()                      # trixie with PACKAGES and trixie's kernel (6.12)
    base_tree(kernel=OLD_SUITE)      # the same tree with bookworm's kernel (6.1)
    server_tree()                    # PACKAGES plus what Fedora Server's disk needs
    minimal_tree(["dracut", ...])    # only those packages and what they depend on
    kernel_debs(SUITE).debs          # the kernel's .debs, for a later `dpkg -i`

A kernel comes as .deb files downloaded once per suite into the cache (debs/<suite>/, through a
private apt state in apt/<suite>/ that leaves the host's apt alone) and reused as they are, even
after the archive has moved on. kernel_debs gives the image package and the linux-image-amd64
metapackage: installing both into a tree with the older kernel upgrades its metapackage and
keeps the older kernel installed, as apt would.

Trees are in trees/, named debian-trixie-[flavour-]linux-<kernel version>-<key>.tar, where the key
hashes the whole mmdebstrap argv (suite, mirrors, packages, dpkg excludes, hooks, the kernel .deb
names) and the source text of the function that writes that argv (_mmdebstrap_argv): any edit
to it, a comment included, means a new tree on the next call. Tarballs hold packages only;
identity (hostname, machine-id, fstab) is written onto each disk (aoelab.sysimage), so changing it
never rebuilds a tree. No initramfs-tools: dracut is the initramfs generator, and a tree's
/boot/initrd.img-KVER is dracut's stock, generic (non-hostonly) image.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from aoelab.cache import cache_dir, digest, locked
from aoelab.imagerun import SysImageError, run
from aoelab.mounts import mounts_under

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
    with locked(where):
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


def _mmdebstrap_argv(packages: Sequence[str], kernel: KernelDebs, out: Path) -> list[str]:
    """The whole recipe of a tree: exactly `packages` and what they depend on (no Recommends:
    mmdebstrap installs none), over the `apt` variant (Essential packages and apt only), plus
    the kernel .debs. Its text and its inputs make the cache key."""
    argv = [
        "mmdebstrap",
        "--mode=root",
        "--variant=apt",
        "--format=tar",
        '--aptopt=Acquire::Languages "none"',
        # makes the kernel .debs given by path visible to dpkg inside the chroot
        "--hook-dir=/usr/share/mmdebstrap/hooks/file-mirror-automount",
        "--hook-dir=/usr/share/mmdebstrap/hooks/eatmydata",  # no fsync per file
        "--include=" + ",".join(packages),
    ]
    argv += [f"--dpkgopt=path-exclude={pattern}" for pattern in DPKG_EXCLUDES]
    argv += ["--dpkgopt=path-include=/usr/share/doc/*/copyright"]
    argv += [f"--include={deb}" for deb in kernel.debs]
    return argv + [SUITE, str(out), *_sources(SUITE)]


def _tree_name(packages: Sequence[str], kernel: str, cache: Path | None, flavour: str) -> str:
    """debian-trixie-[flavour-]linux-<kernel version>-<key>.tar (see the module's docstring)."""
    debs = kernel_debs(kernel, cache)
    recipe = _mmdebstrap_argv(packages, debs, Path("OUT"))
    recipe = [a.replace(str(debs.image.parent), "DEBS") for a in recipe]
    key = digest(recipe, inspect.getsource(_mmdebstrap_argv))
    return f"debian-{SUITE}-{flavour + '-' if flavour else ''}linux-{debs.version}-{key}.tar"


def _tree(packages: Sequence[str], kernel: str, cache: Path | None, flavour: str) -> Path:
    """The cached tarball of that tree, built on the first call."""
    cache = cache or cache_dir()
    trees = cache / "trees"
    trees.mkdir(exist_ok=True)
    tarball = trees / _tree_name(packages, kernel, cache, flavour)
    with locked(tarball):
        if not tarball.exists():
            _mmdebstrap(
                lambda out: _mmdebstrap_argv(packages, kernel_debs(kernel, cache), out), tarball
            )
    return tarball


def tree_name(kernel: str = SUITE, cache: Path | None = None) -> str:
    """The cache file name of the tree with `kernel` (a suite name): its key."""
    return _tree_name(PACKAGES, kernel, cache, "")


def base_tree(kernel: str = SUITE, cache: Path | None = None) -> Path:
    """The tarball of a Debian trixie tree with `kernel`'s linux-image installed ('trixie': 6.12,
    'bookworm': 6.1), built by mmdebstrap on the first call (minutes), reused after (seconds)."""
    return _tree(PACKAGES, kernel, cache, "")


# ---------------------------------------------------------------- minimal trees


def minimal_tree_name(
    packages: Sequence[str],
    kernel: str = SUITE,
    cache: Path | None = None,
    flavour: str = "minimal",
) -> str:
    """The cache file name of minimal_tree(packages, kernel): its key, as tree_name's.
    `flavour` only names the file (the packages are in the key)."""
    return _tree_name([*packages, "initramfs-tools-"], kernel, cache, flavour)


def minimal_tree(
    packages: Sequence[str],
    kernel: str = SUITE,
    cache: Path | None = None,
    flavour: str = "minimal",
) -> Path:
    """The tarball of a trixie tree holding only `packages` (Debian names) with their
    dependencies and `kernel`'s linux-image: what a package's Requires alone bring to a system.
    No initramfs-tools, so the kernel's initramfs tool is dracut if `packages` bring it. Built
    on the first call (a minute or two), reused after; cached beside base_tree's trees, named
    by `flavour`."""
    return _tree([*packages, "initramfs-tools-"], kernel, cache, flavour)


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


# ---------------------------------------------------------------- building and unpacking


def _mmdebstrap(recipe: Callable[[Path], Sequence[str]], tarball: Path) -> None:
    """Run the mmdebstrap argv `recipe` gives for writing `tarball`.partial; rename that to
    `tarball` on success, the log kept beside it."""
    partial = tarball.with_name(tarball.name + ".partial")
    log = tarball.with_name(tarball.name + ".log")
    argv = list(recipe(partial))
    with open(log, "w") as handle:
        proc = subprocess.run(
            argv, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    if proc.returncode != 0:
        partial.unlink(missing_ok=True)
        tail = log.read_text(errors="replace")[-3000:]
        raise SysImageError(f"mmdebstrap failed ({proc.returncode}); log {log}:\n{tail}")
    os.replace(partial, tarball)


def extract(tarball: Path, target: Path) -> None:
    """Unpack a tree tarball into the directory `target` as it was made: numeric owners,
    permissions and extended attributes (file capabilities among them) kept."""
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


@contextlib.contextmanager
def unpacked(tarball: Path, where: Path | None = None) -> Iterator[Path]:
    """A tree tarball (base_tree, minimal_tree) extracted into a fresh directory (`where`, else a
    temporary one) and removed after. A plain directory serves chroot_run and install_aoeboot as
    a mounted disk does, minus the disk: for what needs no boot, partitions or fstab."""
    target = where or Path(tempfile.mkdtemp(prefix="tree."))
    target.mkdir(parents=True, exist_ok=True)
    try:
        extract(tarball, target)
        yield target
    finally:
        left = mounts_under(target)
        if left:  # never delete through a bind mount of the host's /dev or /sys
            raise SysImageError(f"{target}: still mounted there, not removed: {left}")
        run(["rm", "-rf", "--one-file-system", str(target)])
