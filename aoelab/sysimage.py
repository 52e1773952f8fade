"""A real installed Debian 13 ("trixie") system on a disk laid out the way Fedora's installer
lays one out (aoelab.disklayout), made in seconds from a cached tree (aoelab.debtree).

    disk = system_image(tmp / "sys.img")      # make_disk(base_tree(), ...)
    with mounted(disk) as target:             # like Anaconda's /mnt/sysimage
        package.install_aoeboot(target)
        chroot.chroot_run(target, ["kernel-install", "add", kver, f"/boot/vmlinuz-{kver}"])
    boot = localboot.boot_local(disk, tmp)    # its own kernel and initramfs, a local virtio disk
    assert all(r.clean for r in fsck.fsck(disk).values())

A kernel that cannot mount vfat still gets an ESP at /boot/efi: `mounted` stages it on a tmpfs
through mtools (written back on unmount if changed). That is not a vfat mount, so bootctl and
kernel-install in the chroot do not see an ESP there.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from aoelab import mounts
from aoelab.debtree import SUITE, extract
from aoelab.disklayout import (
    ESP_UUID,
    HOST_OPTIONS,
    READ_ONLY,
    SERVER,
    WORKSTATION,
    Layout,
    fstab,
    layout_of,
    partition,
)
from aoelab.imagerun import run
from aoelab.loopdev import attached

HOSTNAME = "aoebox"
MACHINE_ID = "a0e0b0070000400080000000000000a0"  # fixed: boot entry names stay the same
DEFAULT_SIZE = 4 << 30


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
    `layout`, fstab as Anaconda writes it (plus `extra_fstab`, e.g. datadisk.data_fstab_line()),
    hostname, machine-id and /etc/kernel/cmdline written. Returns `image_path`."""
    partition(image_path, size, layout)
    with attached(image_path) as loop:
        layout.make_filesystems(loop)
    with mounted(image_path, layout=layout) as target:
        extract(tree_tarball, target)
        _write_identity(target, extra_fstab, layout)
    return image_path


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
                    stack.enter_context(mounts.mount(device, point, options, mount.fstype))
            yield target
    finally:
        if where is None:
            target.rmdir()


@functools.cache
def kernel_has_vfat() -> bool:
    """Whether this kernel mounts vfat, built in or as a module it can load."""
    subprocess.run(["modprobe", "-q", "vfat"], capture_output=True)
    return "\tvfat\n" in Path("/proc/filesystems").read_text()


MTOOLS_ENV = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}  # no complaints about odd geometry


@contextlib.contextmanager
def _staged_vfat(device: str, point: Path, read_only: bool) -> Iterator[Path]:
    """The ESP where the kernel cannot mount vfat: its files copied out with mtools onto a tmpfs
    at `point`, and, if anything changed there, written back to a freshly made filesystem (same
    volume id) when the mount ends. Not a vfat mount: bootctl and kernel-install, which check
    the filesystem type, do not take it for an ESP."""
    with mounts.mount("tmpfs", point, "mode=0700", "tmpfs"):
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


def boot_kernels(target: Path) -> list[str]:
    """Kernel versions with a /boot/vmlinuz-KVER in the mounted `target`, oldest first."""
    versions = [p.name[len("vmlinuz-") :] for p in (target / "boot").glob("vmlinuz-*")]
    return sorted(versions, key=_version_key)


def _version_key(version: str) -> list[object]:
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"[.+~-]", version)]
