"""The kernel-install plugin's work: `add KVER ENTRY-DIR KERNEL-IMAGE [INITRD...]`,
`remove KVER ENTRY-DIR`.

On add: the kernel command line file carries our options (90-loaderentry.install and Fedora's
20-grub.install copy it into the entry they write); the initramfs that will be booted holds the
aoe driver and our dracut module (built only when none exists or it lacks them: one dracut run);
entries already written for KVER get our options; then the kernel is published if configured.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import List, Mapping, Optional, Sequence, Tuple

from aoeboot import bls, initramfs, paths
from aoeboot import config as configuration
from aoeboot.cmdline import OWNED_KEYS, Cmdline
from aoeboot.errors import AoebootError
from aoeboot.fsutil import atomic_write, safe_name, under
from aoeboot.hostopts import host_options

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Environment:
    """What kernel-install tells its plugins through KERNEL_INSTALL_*."""

    boot_root: Path
    layout: str
    staging_area: Optional[Path]
    conf_root: Optional[Path]
    verbose: bool
    machine_id: str = ""
    entry_token: str = ""
    initrd_generator: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "Environment":
        def path(name: str) -> Optional[Path]:
            value = env.get(name)
            return Path(value) if value else None

        return cls(
            boot_root=path("KERNEL_INSTALL_BOOT_ROOT") or Path("/boot"),
            layout=env.get("KERNEL_INSTALL_LAYOUT", "bls"),
            staging_area=path("KERNEL_INSTALL_STAGING_AREA"),
            conf_root=path("KERNEL_INSTALL_CONF_ROOT"),
            verbose=env.get("KERNEL_INSTALL_VERBOSE", "0") not in ("", "0"),
            machine_id=env.get("KERNEL_INSTALL_MACHINE_ID", ""),
            entry_token=env.get("KERNEL_INSTALL_ENTRY_TOKEN", ""),
            initrd_generator=env.get("KERNEL_INSTALL_INITRD_GENERATOR", ""),
        )

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


def add(kver: str, entry_dir: Path, kernel_image: Path, initrds: Sequence[Path],
        env: Environment, root: Path = Path("/")) -> List[str]:
    """Make kernel `kver` boot from AoE; return what was done (empty: nothing to do here)."""
    safe_name(kver, "kernel version")
    config = configuration.load(root, env.config_file(root))
    options = host_options(config, root)
    if options is None:
        log.debug("root is not on AoE and no target is configured: nothing to do")
        return []
    done = []
    if ensure_cmdline(env.cmdline_file(root), options):
        done.append(f"added the AoE options to {env.cmdline_file(root)}")
    built, image = ensure_initramfs(kver, entry_dir, initrds, env, root)
    done += built
    if env.layout == "bls":
        for path in bls.entries_for(env.boot_root, kver):
            if fix_entry(path, options):
                done.append(f"set the AoE options in {path}")
    if config.publish.destination:
        # The netbooted box gets the whole command line, as the boot entry does.
        full = Cmdline.parse(env.cmdline_file(root).read_text(), where=str(env.cmdline_file(root)))
        done += _publish_added(root, config, kver, kernel_image, image, full.options)
    return done


def ensure_cmdline(path: Path, options: Sequence[str]) -> bool:
    """Give the command line file our options, keeping the user's; True if it changed."""
    try:
        text = path.read_text() if path.exists() else None
    except OSError as err:
        raise AoebootError(f"cannot read {path}: {err.strerror}") from None
    if text is None:
        # Without the file, kernel-install copies /proc/cmdline: the installer's, or a
        # rescue boot's. Start from the running one, minus what only describes this boot.
        current = Cmdline.parse(Path("/proc/cmdline").read_text()).without(["BOOT_IMAGE", "initrd"])
    else:
        current = Cmdline.parse(text, where=str(path))
    if text is not None and _owned(current) == tuple(options):
        return False
    atomic_write(path, current.with_owned(options).render() + "\n")
    return True


def _owned(cmdline: Cmdline) -> Tuple[str, ...]:
    return tuple(o for o in cmdline.options if o.partition("=")[0] in OWNED_KEYS)


def fix_entry(path: Path, options: Sequence[str]) -> bool:
    entry = bls.BootEntry.read(path)
    if _owned(entry.options) == tuple(options):
        return False
    atomic_write(path, entry.with_options(entry.options.with_owned(options)).render())
    return True


def ensure_initramfs(kver: str, entry_dir: Path, initrds: Sequence[Path], env: Environment,
                     root: Path) -> Tuple[List[str], Path]:
    """Verify the initramfs that will be booted; build it only if missing or without AoE.
    Returns what was done and where that initramfs is."""
    staged = [env.staging_area / "initrd"] if env.staging_area else []
    found = initramfs.find(kver, root, [*initrds, *staged, entry_dir / "initrd"])
    if found is not None:
        lacking = initramfs.missing(found)
        if not lacking:
            log.info("%s has the aoe driver and our dracut module", found)
            return [], found
        log.warning("%s lacks the %s: rebuilding it", found, " and the ".join(lacking))
        initramfs.build(kver, found)  # kernel-install runs inside the system it serves
        return [f"rebuilt {found} (it lacked the {' and the '.join(lacking)})"], found
    # No generator made one (Debian's kernel-install has no dracut plugin): make it where
    # 90-loaderentry.install picks it up, or where Fedora's grub entries look.
    out = staged[0] if staged else under(root, f"/boot/initramfs-{kver}.img")
    initramfs.build(kver, out)
    if not staged:
        atomic_write(_record(root, kver), json.dumps({"built": [str(out)]}) + "\n")
    return [f"built {out}"], out


def remove(kver: str, entry_dir: Path, env: Environment, root: Path = Path("/")) -> List[str]:
    """Remove what `add` created for `kver` (and only that)."""
    safe_name(kver, "kernel version")
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
    config = configuration.load(root, env.config_file(root))
    if config.publish.destination:
        from aoeboot import publish  # only where publishing is configured

        publish.after_remove(root=root, config=config, kver=kver)
        done.append("unpublished")
    return done


def _publish_added(root: Path, config: configuration.Config, kver: str, kernel_image: Path,
                   image: Path, options: Sequence[str]) -> List[str]:
    from aoeboot import publish  # only where publishing is configured

    try:
        publish.after_add(root=root, config=config, kver=kver, kernel=kernel_image, initrd=image,
                          options=tuple(options))
    except AoebootError as err:
        # The kernel install must succeed; the publish stays pending for `aoeboot publish`.
        log.warning("publishing %s failed, will retry with `aoeboot publish`: %s", kver, err)
        return []
    return ["published"]
