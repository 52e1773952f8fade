"""The initramfs of a kernel: where it is, whether it can boot from AoE (its cpio listing), and
rebuilding it."""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from aoeboot import bootfiles, cpio, kernel_image
from aoeboot.cmdline import Cmdline
from aoeboot.errors import AoebootError
from aoeboot.fsutil import fsync_dir
from aoeboot.run import run

log = logging.getLogger(__name__)

# What an initramfs needs to boot from AoE: the driver and our dracut module's cmdline hook.
REQUIRED = {"aoe driver": ("aoe.ko",), "aoeboot dracut module": ("parse-aoe.sh",)}
# What it needs to assemble root's stack, by the option that asks for it: dracut's 90lvm,
# 90crypt (systemd-cryptsetup under systemd, cryptsetup without) and 90mdraid.
ASSEMBLERS = {
    "rd.lvm.lv": ("LVM (dracut's lvm module)", ("lvm_scan",)),
    "rd.luks.uuid": ("LUKS (dracut's crypt module)", ("systemd-cryptsetup", "cryptsetup")),
    "rd.md.uuid": ("md (dracut's mdraid module)", ("mdadm",)),
}

# Debian's dracut runs /etc/initramfs/post-update.d/* with the image it wrote unless this is set.
# There, systemd-boot's hook runs `kernel-install add KVER /boot/vmlinuz-KVER IMAGE`: with our
# temporary name as IMAGE, which kernel-install copies to the ESP (and our plugin, run again by
# it, builds again, and so on: one 45 MB temporary copy on the ESP per level).
NO_HOOKS = {"NO_POST_UPDATE_HOOKS": "1"}
# Our own builds hand the dracut module the options to bake: it need not find aoeboot on
# dracut's own PATH (/usr/sbin:/usr/bin:/sbin:/bin, without pip's /usr/local/bin).
BAKE_ENV = "AOEBOOT_INITRAMFS_OPTIONS"


def candidates(kver: str, root: Path = Path("/"), extra: Iterable[Path] = ()) -> list[Path]:
    """Where an initramfs of `kver` may be, most specific first (the given ones, then the usual
    names of Fedora, Debian and older dracut under /boot)."""
    boot = root / "boot"
    return [*extra, boot / f"initramfs-{kver}.img", boot / f"initrd.img-{kver}"]


def booted(kver: str, root: Path = Path("/")) -> list[Path]:
    """The images `kver` boots: each one its entries name (which may not exist), else the first
    of candidates() that exists; empty when there is none."""
    return bootfiles.entry_initrds(root, kver) or [
        image for image in [find(kver, root)] if image is not None
    ]


def find(kver: str, root: Path = Path("/"), extra: Iterable[Path] = ()) -> Path | None:
    for path in candidates(kver, root, extra):
        if path.is_file():
            return path
    return None


def missing(image: Path) -> list[str]:
    """What `image` lacks to boot from AoE (empty: it has it all)."""
    return _lacking(image, REQUIRED.items())


def missing_assembly(image: Path, assembly: Sequence[str]) -> list[str]:
    """What `image` lacks to assemble root's stack, which `assembly` (rd.lvm.lv=...) asks for."""
    keys = dict.fromkeys(option.partition("=")[0] for option in assembly)
    return _lacking(image, [ASSEMBLERS[key] for key in keys if key in ASSEMBLERS])


def _lacking(image: Path, wanted: Iterable[tuple[str, Sequence[str]]]) -> list[str]:
    names = [name.rsplit("/", 1)[-1] for name in cpio.names(image)]
    return [
        what
        for what, needles in wanted
        if not any(
            name.startswith(needle) or name.endswith(needle) for name in names for needle in needles
        )
    ]


def baked_options(image: Path) -> Cmdline:
    """The options baked into `image`'s /etc/cmdline.d (dracut's getarg reads them like the
    real command line, which wins where both say something)."""
    files = cpio.contents(
        image, lambda name: name.startswith("etc/cmdline.d/") and name.endswith(".conf")
    )
    text = " ".join(data.decode("utf-8", "replace") for _, data in sorted(files.items()))
    return Cmdline.parse(text, where=f"{image}:/etc/cmdline.d")


def carries(image: Path, options: Sequence[str]) -> bool:
    """Does `image` carry all of `options` in /etc/cmdline.d? (A hostonly build puts other
    modules' options there too.)"""
    return set(options) <= set(baked_options(image).options)


def warn_unless_carried(image: Path, options: Sequence[str], shown: Path | None = None) -> None:
    """Log that an image we only verified lacks some of `options` (status WARNs too)."""
    if not carries(image, options):
        log.warning(
            "%s does not carry the AoE options itself: a boot loader tool that rewrites "
            "the entry's options leaves AoE down; `dracut -f` rebuilds it",
            shown or image,
        )


@dataclass(frozen=True)
class Rescue:
    """Fedora's rescue boot: /boot/vmlinuz-0-rescue-ID (a copy of some kernel) and its
    generic initramfs, made once by 51-dracut-rescue.install."""

    image: Path
    kernel: Path
    kver: str | None  # read from the kernel's header; None if unreadable


def rescue_images(root: Path = Path("/")) -> list[Rescue]:
    boot = root / "boot"
    found = []
    for image in sorted(boot.glob("initramfs-0-rescue-*.img")):
        token = image.name[len("initramfs-0-rescue-") : -len(".img")]
        kernel = boot / f"vmlinuz-0-rescue-{token}"
        found.append(Rescue(image, kernel, kernel_image.version(kernel)))
    return found


def build(
    kver: str,
    out: Path,
    chroot: Path | None = None,
    extra_args: Sequence[str] = (),
    baked: Sequence[str] = (),
) -> None:
    """Build the initramfs of `kver` (with module aoe) into `out`, atomically, mode 0644.
    Without dracut's post-update hooks (NO_HOOKS): they would be handed the temporary name.
    With `baked`, the image must carry those options (hostopts.initramfs_options), or nothing
    is written.

    With `chroot` (an installed system's root, `out` inside it) dracut runs chrooted into it, so
    it uses that system's modules and configuration."""
    out = out.absolute()  # a relative root: dracut's output is named from inside the chroot
    chroot = chroot.absolute() if chroot is not None else None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise AoebootError(f"cannot write initramfs {out}: {err.strerror}") from None
    # A name dracut creates, not an empty file made beforehand: when the directory goes
    # read-only under dracut, nothing of ours is left behind that could not be removed.
    tmp = out.parent / f".{out.name}.{secrets.token_hex(4)}.tmp"
    try:
        argv = ["dracut", "--force", "--add", "aoe", "--kver", kver, *extra_args]
        if chroot is not None and chroot != Path("/"):
            argv = ["chroot", str(chroot), *argv, "/" + str(tmp.relative_to(chroot))]
        else:
            argv.append(str(tmp))
        log.info("building the initramfs of %s (dracut, about a minute)", kver)
        bake = {BAKE_ENV: " ".join(baked)} if baked else {}
        run(argv, capture=True, env={**os.environ, **NO_HOOKS, **bake})
        if baked and not carries(tmp, baked):
            raise AoebootError(
                f"dracut built {out} without the AoE options in /etc/cmdline.d: "
                "is its aoe module older than aoeboot?"
            )
        os.chmod(tmp, 0o644)  # dracut writes 0600; TFTP/HTTP publishing needs it readable
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, out)
        fsync_dir(out.parent)
    except OSError as err:
        raise AoebootError(f"cannot write initramfs {out}: {err.strerror}") from None
    finally:
        _remove_temp(tmp)


def _remove_temp(tmp: Path) -> None:
    """Remove what a failed build left; when that fails too (the directory went read-only),
    say so and let the build's own error through."""
    try:
        tmp.unlink(missing_ok=True)
    except OSError as err:
        log.warning("cannot remove %s: %s", tmp, err.strerror)
