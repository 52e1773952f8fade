"""The kernel-install plugin's work: `add KVER ENTRY-DIR KERNEL-IMAGE [INITRD...]`,
`remove KVER ENTRY-DIR`.

On add: the kernel command line file carries our options (90-loaderentry.install and Fedora's
20-grub.install copy it into the entry they write), and so does /etc/default/grub where grub's
tools would rewrite the entries from it; the one initramfs the entry boots holds the aoe driver
and our dracut module (built only when none exists or it lacks them: one dracut run); entries
already written for KVER get our options, whatever the layout but `uki`; a UKI whose own initrd
cannot boot from AoE fails the install; then the kernel is published if configured.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from aoeboot import bls, bootfiles, grubdefault, initramfs, lock, paths
from aoeboot import config as configuration
from aoeboot.cmdline import Cmdline
from aoeboot.errors import AoebootError
from aoeboot.fsutil import atomic_write, fsync_dir, read_or_empty, safe_name, under
from aoeboot.hostopts import host_options, initramfs_options_from
from aoeboot.kernel_image import uki_initrd

if TYPE_CHECKING:
    from aoeboot.publish import PublishState  # publish itself loads only where it is set up

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Environment:
    """What kernel-install tells its plugins through KERNEL_INSTALL_*."""

    boot_root: Path
    layout: str
    staging_area: Path | None
    conf_root: Path | None
    verbose: bool
    image_type: str = ""  # "uki" for a unified kernel image (systemd 254+)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Environment:
        def path(name: str) -> Path | None:
            value = env.get(name)
            return Path(value) if value else None

        return cls(
            boot_root=path("KERNEL_INSTALL_BOOT_ROOT") or Path("/boot"),
            layout=env.get("KERNEL_INSTALL_LAYOUT", "bls"),
            staging_area=path("KERNEL_INSTALL_STAGING_AREA"),
            conf_root=path("KERNEL_INSTALL_CONF_ROOT"),
            verbose=env.get("KERNEL_INSTALL_VERBOSE", "0") not in ("", "0"),
            image_type=env.get("KERNEL_INSTALL_IMAGE_TYPE", ""),
        )

    @property
    def uki(self) -> bool:
        return self.image_type == "uki" or self.layout == "uki"

    def config_file(self, root: Path) -> Path:
        # An aoeboot.conf beside kernel-install's own config (KERNEL_INSTALL_CONF_ROOT) wins.
        if self.conf_root and (self.conf_root / "aoeboot.conf").exists():
            return self.conf_root / "aoeboot.conf"
        return under(root, paths.CONFIG)

    def cmdline_file(self, root: Path) -> Path:
        # KERNEL_INSTALL_CONF_ROOT, when set, is the only place kernel-install reads cmdline from.
        return self.conf_root / "cmdline" if self.conf_root else under(root, paths.KERNEL_CMDLINE)


def _record(root: Path, kver: str) -> Path:
    return under(root, paths.STATE_DIR) / "kernels" / f"{kver}.json"


def add(
    kver: str,
    entry_dir: Path,
    kernel_image: Path,
    initrds: Sequence[Path],
    env: Environment,
    root: Path = Path("/"),
) -> list[str]:
    """Make kernel `kver` boot from AoE; return what was done and what was checked (empty: this
    host does not boot from AoE)."""
    safe_name(kver, "kernel version")
    config = configuration.load(root, env.config_file(root))
    options = host_options(config, root)
    if options is None:
        log.debug("root is not on AoE and no target is configured: nothing to do")
        return []
    with lock.held(root):  # a second kernel-install waits: one reads what the other writes
        return _add(kver, entry_dir, kernel_image, initrds, env, root, config, options)


def _add(
    kver: str,
    entry_dir: Path,
    kernel_image: Path,
    initrds: Sequence[Path],
    env: Environment,
    root: Path,
    config: configuration.Config,
    options: Sequence[str],
) -> list[str]:
    report = [_check_uki(kernel_image)] if env.uki else []
    cmdline_file = env.cmdline_file(root)
    # kernel-install's own order: /etc/kernel/cmdline, /usr/lib/kernel/cmdline, /proc/cmdline
    base = bootfiles.cmdline_base(root, fallback=read_or_empty(Path("/proc/cmdline")))
    if bootfiles.ensure_cmdline(cmdline_file, options, base):
        report.append(f"added the AoE options to {cmdline_file}")
    else:
        report.append(f"checked: {cmdline_file} has {' '.join(options)}")
    if grubdefault.ensure(root, options):
        report.append(f"set the AoE options in GRUB_CMDLINE_LINUX of {paths.DEFAULT_GRUB}")
    image: Path | None = None  # a UKI carries its initrd: it is published alone
    if not env.uki:
        baked = initramfs_options_from(options, config)
        lines, image = ensure_initramfs(kver, entry_dir, initrds, env, root, baked)
        report += lines + _fix_entries(kver, env, root, options)
    if config.publish.destination:
        if bootfiles.ensure_publish_timer(root):
            report.append(f"enabled {paths.PUBLISH_TIMER}")
        # The netbooted box gets the whole command line, as the boot entry does.
        full = Cmdline.parse(cmdline_file.read_text(), where=str(cmdline_file))
        report += _publish_added(root, config, kver, kernel_image, image, full.options, env)
    return report


def _entries(kver: str, env: Environment, root: Path) -> dict[Path, Path]:
    """The entries of `kver` wherever they are, each once, with the boot root each is under:
    kernel-install's boot root (layout bls) and /boot (Fedora's 20-grub.install writes to
    /boot/loader/entries for every layout)."""
    found: dict[Path, tuple[Path, Path]] = {}
    for boot_root in (env.boot_root, under(root, "/boot")):
        for path in bls.entries_for(boot_root, kver):
            found.setdefault(path.resolve(), (path, boot_root))
    return dict(found.values())


def _fix_entries(kver: str, env: Environment, root: Path, options: Sequence[str]) -> list[str]:
    report = []
    for path in _entries(kver, env, root):
        if bootfiles.fix_entry(path, options):
            report.append(f"set the AoE options in {path}")
        else:
            report.append(f"checked: {path} boots with {' '.join(options)}")
    return report


def _check_uki(kernel_image: Path) -> str:
    """A UKI boots the initrd built into it: refuse one that cannot mount root from AoE."""
    hint = "install a kernel with a separate initramfs (Fedora: kernel, not kernel-uki-virt)"
    data = uki_initrd(kernel_image)
    if data is None:
        raise AoebootError(
            f"{kernel_image} is a unified kernel image without an initrd: it "
            "cannot mount root from AoE",
            hint=hint,
        )
    with tempfile.NamedTemporaryFile(prefix="aoeboot-uki-initrd.") as handle:
        handle.write(data)
        handle.flush()
        lacking = initramfs.missing(Path(handle.name))
    if lacking:
        raise AoebootError(
            f"the unified kernel image {kernel_image} carries its own initrd, "
            f"built without the {' and the '.join(lacking)}: it cannot boot root "
            "from AoE, and no initramfs aoeboot builds would reach it",
            hint=hint,
        )
    return f"checked: the initrd inside {kernel_image} has the aoe driver and our module"


def ensure_initramfs(
    kver: str,
    entry_dir: Path,
    initrds: Sequence[Path],
    env: Environment,
    root: Path,
    baked: Sequence[str] = (),
) -> tuple[list[str], Path]:
    """Make sure the one initramfs the entry boots has AoE; build it only if missing or without
    AoE (carrying `baked` in /etc/cmdline.d). Returns what was done or checked, and where that
    initramfs is."""
    report: list[str] = []
    # kernel-install deletes its staging area on exit, and its layouts other than bls and uki
    # never read it: an initramfs left there would be lost.
    staged = (
        env.staging_area / "initrd" if env.staging_area and env.layout in ("bls", "uki") else None
    )
    named = _entry_initrd(kver, env, root)
    if named is not None:
        # An entry is already there (Fedora's 20-grub.install runs before us, for every
        # layout): what it names is what boots, and what is published.
        generated = env.staging_area / "initrd" if env.staging_area else None
        if not named.is_file() and generated is not None and generated.is_file():
            # the initrd generator built this kernel's image where the entry never looks (and
            # kernel-install deletes it on exit): take it rather than build another
            _copy_into_place(generated, named)
            atomic_write(_record(root, kver), json.dumps({"built": [str(named)]}) + "\n")
            report.append(f"copied {generated} to {named}, where the entry looks")
        return _ensure_image(kver, named, report, baked, record_in=root)
    given = [path for path in initrds if path.is_file()]
    if given and staged is not None and staged.is_file():
        # 90-loaderentry.install would list both, and the box would fetch and unpack both.
        staged.unlink()
        report.append(f"dropped the second initramfs {staged}: the entry boots {given[0]}")
    found = initramfs.find(
        kver, root, [*given, *([staged] if staged else []), entry_dir / "initrd"]
    )
    if found is not None:
        return _ensure_image(kver, found, report, baked)
    # No generator made one (Debian's kernel-install 252 has no dracut plugin): make it where
    # 90-loaderentry.install picks it up, or where Fedora's grub entries look.
    out = staged if staged is not None else under(root, f"/boot/initramfs-{kver}.img")
    return _ensure_image(kver, out, report, baked, record_in=root if staged is None else None)


def _copy_into_place(source: Path, dest: Path) -> None:
    """Copy atomically, readable for TFTP/HTTP publishing (generators write 0600)."""
    tmp = dest.with_name(f".{dest.name}.aoeboot.tmp")
    try:
        with open(source, "rb") as src, open(tmp, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
        fsync_dir(dest.parent)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise AoebootError(f"cannot write {dest}: {err.strerror}") from None


def _entry_initrd(kver: str, env: Environment, root: Path) -> Path | None:
    """The main initramfs an existing entry of `kver` names (the last initrd line: microcode
    images come first), as a path; None without such an entry."""
    for path, boot_root in _entries(kver, env, root).items():
        name = bls.BootEntry.read(path).main_initrd()
        if name is not None:
            return under(boot_root, name)
    return None


def _ensure_image(
    kver: str, image: Path, report: list[str], baked: Sequence[str], record_in: Path | None = None
) -> tuple[list[str], Path]:
    """Verify `image`, rebuild it if it lacks AoE, build it if missing (one dracut run), with
    `baked` in it. With `record_in` (a system root), remember that we built it there, so
    `remove` deletes it."""
    if not image.is_file():
        initramfs.build(kver, image, baked=baked)  # kernel-install runs in the system it serves
        if record_in is not None:
            atomic_write(_record(record_in, kver), json.dumps({"built": [str(image)]}) + "\n")
        return report + [f"built {image}"], image
    lacking = initramfs.missing(image)
    if not lacking:
        initramfs.warn_unless_carried(image, baked)
        return report + [f"checked: {image} has the aoe driver and our dracut module"], image
    log.warning("%s lacks the %s: rebuilding it", image, " and the ".join(lacking))
    initramfs.build(kver, image, baked=baked)
    return report + [f"rebuilt {image} (it lacked the {' and the '.join(lacking)})"], image


def remove(kver: str, entry_dir: Path, env: Environment, root: Path = Path("/")) -> list[str]:
    """Remove what `add` created for `kver` (and only that)."""
    safe_name(kver, "kernel version")
    config = configuration.load(root, env.config_file(root))
    if not _record(root, kver).exists() and not config.publish.destination:
        return []  # nothing of ours: take no lock, make no state directory
    with lock.held(root):
        return _remove(kver, root, config)


def _remove(kver: str, root: Path, config: configuration.Config) -> list[str]:
    done = []
    record = _record(root, kver)
    if record.exists():
        try:
            built = json.loads(record.read_text()).get("built", [])
        except (OSError, ValueError) as err:
            raise AoebootError(f"cannot read {record}: {err}") from None
        for name in built:
            try:
                os.unlink(name)
                done.append(f"removed {name}")
            except FileNotFoundError:
                pass
        record.unlink()
    if config.publish.destination:
        from aoeboot import publish  # only where publishing is configured

        state = publish.after_remove(root=root, config=config, kver=kver)
        done.append(_removed_report(state, kver))
    return done


def _removed_report(state: PublishState, kver: str) -> str:
    """What the NAS boots now, as `publish.json` says: never "unpublished" when it was not."""
    boots = ", ".join(state["kernels"]) or "nothing"
    if state["pending"]:
        return f"unpublishing {kver} is pending ({state['error']}); the NAS boots {boots}"
    if kver in state["kernels"]:
        return f"kept {kver} on the NAS: it is the only kernel the box can boot"
    return f"unpublished {kver}; the NAS boots {boots}"


def _lasting(path: Path, env: Environment, root: Path) -> bool:
    """Whether `path` stays as long as its kernel is installed: in the boot root or /boot, not
    in kernel-install's staging area (deleted when it exits)."""

    def inside(base: Path | None) -> bool:
        return base is not None and path.resolve().is_relative_to(base.resolve())

    return not inside(env.staging_area) and (inside(env.boot_root) or inside(under(root, "/boot")))


def _publish_added(
    root: Path,
    config: configuration.Config,
    kver: str,
    kernel_image: Path,
    image: Path | None,
    options: Sequence[str],
    env: Environment,
) -> list[str]:
    from aoeboot import publish  # only where publishing is configured

    try:
        state = publish.after_add(
            root=root,
            config=config,
            kver=kver,
            kernel=kernel_image,
            initrd=image,
            options=tuple(options),
            keep_copy=image is not None and not _lasting(image, env, root),
        )
    except AoebootError as err:
        # The kernel install must succeed; the publish stays pending for `aoeboot publish`.
        log.warning("publishing %s failed, will retry with `aoeboot publish`: %s", kver, err)
        return [f"publishing {kver} is pending: {err}"]
    if state["pending"]:
        return [f"publishing {kver} is pending ({state['error']}); `aoeboot publish` retries"]
    return [f"published {kver}; the NAS boots {', '.join(state['kernels'])}"]
