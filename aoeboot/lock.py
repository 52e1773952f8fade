"""One aoeboot at a time changes a system's boot files, publish state and NAS directory.

Two kernel-install runs (or one and the publish timer) otherwise interleave reading the NAS's
manifest, uploading, switching boot.ipxe and removing old files, and one deletes what the other
just published. The lock is a flock(2) on a file in the state directory, so it dies with its
holder: a process killed with SIGKILL leaves no stale lock behind.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

from aoeboot import paths
from aoeboot.errors import AoebootError
from aoeboot.fsutil import under

log = logging.getLogger(__name__)

LOCK = paths.STATE_DIR / "lock"
WAIT = 900.0  # seconds: longer than a whole publish over a slow link (rsync gives up at 600)

_held: dict[Path, int] = {}  # lock file -> nesting depth in this process


@contextlib.contextmanager
def held(root: Path = Path("/"), wait: float = WAIT) -> Iterator[None]:
    """Hold the system's aoeboot lock; wait for another holder up to `wait` seconds, then fail.
    Re-entrant within a process (kernel-install's add takes it, and so does the publish)."""
    path = under(root, LOCK)
    if path in _held:
        _held[path] += 1
        try:
            yield
        finally:
            _held[path] -= 1
        return
    fd = _acquire(path, wait)
    _held[path] = 1
    try:
        yield
    finally:
        del _held[path]
        os.close(fd)  # releases the flock


def _acquire(path: Path, wait: float) -> int:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as err:
        raise AoebootError(f"cannot open the lock {path}: {err.strerror}") from None
    deadline = time.monotonic() + wait
    told = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except OSError as err:
            if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                os.close(fd)
                raise AoebootError(f"cannot lock {path}: {err.strerror}") from None
        if time.monotonic() >= deadline:
            os.close(fd)
            raise AoebootError(
                f"another aoeboot has held {path} for over {wait:.0f} s",
                hint="wait for it to finish (kernel-install, aoeboot publish)",
            )
        if not told:
            log.info("waiting for another aoeboot to finish (it holds %s)", path)
            told = True
        time.sleep(0.05)
