"""Writing files so that a reader never sees half of one, and names that are safe as paths."""

from __future__ import annotations

import errno
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from aoeboot.errors import AoebootError

_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+~:@-]*")


def is_safe_name(text: str) -> bool:
    return bool(_SAFE_NAME.fullmatch(text)) and text not in (".", "..") and len(text) <= 255


def safe_name(text: str, what: str) -> str:
    """Return `text` if it can be one path component (no '/', no '..', no control chars)."""
    if not is_safe_name(text):
        raise AoebootError(f"invalid {what} {text!r}", hint="must be one plain file name")
    return text


PATH_MAX = 4096  # Linux: a longer path fails every system call with ENAMETOOLONG
NAME_MAX = 255
# Room left under a root for the paths aoeboot makes there (/boot/loader/entries/NAME.conf,
# /lib/modules/KVER/...), so none of them reaches PATH_MAX.
ROOT_HEADROOM = 1024


def system_root(path: Path) -> Path:
    """`path` (a --root) made absolute, so every path under it is too (dracut runs chrooted
    there, and names files relative to it), and short enough for every path made under it."""
    absolute = os.path.abspath(path)
    raw = os.fsencode(absolute)
    shown = absolute if len(absolute) <= 256 else f"{absolute[:48]}... ({len(raw)} bytes)"
    if len(raw) > PATH_MAX - ROOT_HEADROOM or any(len(p) > NAME_MAX for p in raw.split(b"/")):
        raise AoebootError(
            f"root {shown} is too long",
            hint=f"at most {PATH_MAX - ROOT_HEADROOM} bytes, each name at most "
            f"{NAME_MAX}, leaving room for the paths under it",
        )
    if not os.path.isdir(absolute):
        raise AoebootError(f"root {shown} is not a directory")
    return Path(absolute)


def read_or_empty(path: Path) -> str:
    """The stripped text of a small file (sysfs, procfs, config); "" if it cannot be read."""
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return ""


def read_text(path: Path) -> str:
    """A text file the user or the system wrote; unreadable is a one-line error naming it."""
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise AoebootError(f"cannot read {path}: {err}") from None


def under(root: Path, path: str | Path) -> Path:
    """`path` (absolute, as seen from inside `root`) as a path under `root`."""
    return Path(root) / str(path).lstrip("/")


def atomic_write(path: Path, data: str | bytes, mode: int = 0o644) -> None:
    """Write `data` to `path` via a temp file in the same directory, fsync, rename, fsync dir."""
    raw = data.encode() if isinstance(data, str) else data
    _atomic(Path(path), mode, lambda handle: handle.write(raw))


def atomic_copy(source: Path, path: Path, mode: int = 0o644) -> None:
    """Copy `source` to `path` as atomic_write does, a block at a time (initrds are large)."""

    def copy(handle: BinaryIO) -> None:
        with open(source, "rb") as src:
            shutil.copyfileobj(src, handle, 1 << 20)

    _atomic(Path(path), mode, copy)


def _atomic(path: Path, mode: int, fill: Callable[[BinaryIO], object]) -> None:
    """A temp file beside `path`, filled by `fill`, fsync'ed, renamed over it, directory
    fsync'ed; on failure the temp file is gone and the error names `path`."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise _io_error(path, err) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            fill(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as err:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise _io_error(path, err) from None


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _io_error(path: Path, err: OSError) -> AoebootError:
    reason = {
        errno.EROFS: "read-only file system",
        errno.ENOSPC: "no space left on device",
        errno.EACCES: "permission denied",
    }.get(err.errno or 0, err.strerror or str(err))
    return AoebootError(f"cannot write {path}: {reason}")
