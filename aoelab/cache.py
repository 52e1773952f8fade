"""The lab's cache outside the checkout: $AOELAB_CACHE, else /var/cache/aoelab. What takes
minutes to make (kernel .debs, Debian trees, the NAS cache library) is kept there, named by a
hash of its inputs, and builders of the same file wait on a lock beside it."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

CACHE_ENV = "AOELAB_CACHE"
DEFAULT_CACHE = Path("/var/cache/aoelab")


def cache_dir() -> Path:
    """$AOELAB_CACHE or /var/cache/aoelab, created."""
    path = Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE)
    path.mkdir(parents=True, exist_ok=True)
    return path


def digest(*parts: object) -> str:
    """A short hash of `parts` (as JSON, keys sorted): the part of a cache name that changes
    with what the file is made from."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock next to `path`, so two builders of the same thing wait for each other."""
    lock = path.with_name(path.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
