"""The image's own programs run from the host: chrooted into a mounted disk or an unpacked tree,
with /proc, /sys, /dev and an empty /run mounted for the duration, in a clean environment."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from aoelab import mounts
from aoelab.imagerun import SysImageError

CHROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@contextlib.contextmanager
def chroot_mounts(target: Path) -> Iterator[None]:
    """/proc, /sys, /dev (with /dev/pts) and an empty /run for a chrooted command; an empty /run
    also tells maintainer scripts that systemd does not run there, so they start no daemons."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(mounts.mount("proc", target / "proc", fstype="proc"))
        stack.enter_context(mounts.mount("/sys", target / "sys", "bind"))
        stack.enter_context(mounts.mount("/dev", target / "dev", "bind"))
        stack.enter_context(mounts.mount("/dev/pts", target / "dev/pts", "bind"))
        stack.enter_context(mounts.mount("tmpfs", target / "run", "mode=0755", "tmpfs"))
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
