"""Run the system's dracut with our 59aoe module taken from the working tree, not an installed copy.

dracut reads its modules from $dracutbasedir/modules.d. We build a throw-away base dir that links
everything of /usr/lib/dracut, with a modules.d that links every system module plus ours.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MODULE_SRC = REPO / "dracut" / "59aoe"
SYSTEM_BASE = Path("/usr/lib/dracut")


def overlay(workdir: Path, module_src: Path = MODULE_SRC, system_base: Path = SYSTEM_BASE) -> Path:
    """Make `workdir/dracut` a dracut base dir with `module_src` as modules.d/59aoe; return it."""
    base = workdir / "dracut"
    modules = base / "modules.d"
    modules.mkdir(parents=True)
    for entry in system_base.iterdir():
        if entry.name != "modules.d":
            (base / entry.name).symlink_to(entry)
    for module in (system_base / "modules.d").iterdir():
        if module.name[2:] != "aoe":  # an installed copy must not shadow the working tree's
            (modules / module.name).symlink_to(module)
    (modules / "59aoe").symlink_to(module_src.resolve())
    return base


def env(base: Path) -> dict[str, str]:
    """The environment for dracut/lsinitrd using `base`."""
    return {**os.environ, "dracutbasedir": str(base)}


# Only what a VM test boot needs; -m keeps the build to about a minute on two cores.
SYSTEMD_MODULES = "systemd systemd-initrd dracut-systemd base aoe"
SHELL_MODULES = "base aoe"
DRIVERS = "ext4 virtio_blk virtio_pci virtio_net e1000"


def build(
    out: Path, kver: str, workdir: Path, systemd: bool = True, extra: Sequence[str] = ()
) -> Path:
    """Build a --no-hostonly initramfs for `kver` with our module; raise with dracut's tail on
    failure."""
    base = workdir / "dracut" if (workdir / "dracut").exists() else overlay(workdir)
    # the host's dracut.conf.d (e.g. dracut-network's ifcfg) stays out
    confdir = workdir / "empty.conf.d"
    confdir.mkdir(exist_ok=True)
    argv = [
        "dracut",
        "--force",
        "--conf",
        "/dev/null",
        "--confdir",
        str(confdir),
        "--no-hostonly",
        "--no-hostonly-cmdline",
        "--kver",
        kver,
        "-m",
        SYSTEMD_MODULES if systemd else SHELL_MODULES,
        "--add-drivers",
        DRIVERS,
        "--no-compress",
        *extra,
        str(out),
    ]
    proc = subprocess.run(argv, env=env(base), capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"dracut failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return out
