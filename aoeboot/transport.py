"""Where published files go: a directory (local, or the NAS's export mounted over NFS) or a
remote directory over SSH (rsync through the system's ssh; host keys always checked).

Every upload lands under a temporary name and is renamed into place only when complete, so a
reader (TFTP, HTTP, iPXE) never sees a partial file under a real name.
"""

from __future__ import annotations

import errno
import hashlib
import os
import queue
import re
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

from aoeboot.config import parse_ssh_url
from aoeboot.errors import AoebootError
from aoeboot.fsutil import atomic_write, fsync_dir, safe_name
from aoeboot.run import CommandFailed, run

CHUNK = 4 << 20  # bytes copied before the hasher may start on them

# Our own temporary names, left behind only by a process killed mid-publish: DirectoryDestination's
# uploads and atomic writes, and rsync's `.NAME.XXXXXX`. Nothing else hidden is ever ours.
_LEFTOVER = re.compile(
    r"\.upload\.[A-Za-z0-9_]+"
    r"|\.(?:boot\.ipxe|manifest\.json)\.[A-Za-z0-9_]+\.tmp"
    r"|\.(?:(?:vmlinuz|initrd)-[A-Za-z0-9._+~:@-]+|boot\.ipxe|manifest\.json)"
    r"\.[A-Za-z0-9]{6}"
)


def is_leftover(name: str) -> bool:
    return _LEFTOVER.fullmatch(name) is not None


def _removable(name: str) -> str:
    return name if is_leftover(name) else safe_name(name, "file name")


def copy_and_hash(src: int, dst: int, size: int) -> str:
    """Copy `size` bytes of `src` into `dst` inside the kernel and return the SHA-256 of what
    was written, read back from the page cache. Copy, hash and flush run side by side: a worker
    copies chunk after chunk and then fsyncs, while this thread hashes each copied chunk."""
    copied: queue.Queue[int] = queue.Queue()

    def copy_then_sync() -> None:
        done = 0
        try:
            while done < size:
                sent = os.sendfile(dst, src, done, min(size - done, CHUNK))
                if sent == 0:
                    raise OSError(errno.EIO, "source file shrank while copying")
                done += sent
                copied.put(done)
            os.fsync(dst)
        finally:
            copied.put(-1)  # wakes the hasher if the copy failed

    digest = hashlib.sha256()
    with ThreadPoolExecutor(max_workers=1) as pool:
        worker = pool.submit(copy_then_sync)
        hashed = 0
        while hashed < size:
            ready = copied.get()
            if ready < 0:
                break
            while hashed < ready:
                block = os.pread(dst, min(ready - hashed, 1 << 20), hashed)
                digest.update(block)
                hashed += len(block)
        worker.result()  # raises the worker's OSError, if any
    return digest.hexdigest()


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Destination(Protocol):
    sent_bytes: int

    def listing(self) -> dict[str, int]: ...  # name -> size of every published file
    def leftovers(self) -> list[str]: ...  # temporary files of a publish that was killed
    def upload(self, local: Path, stem: str) -> tuple[str, str]: ...  # -> (name, sha256)
    def put(self, local: Path, name: str) -> None: ...
    def write_text(self, name: str, text: str) -> None: ...
    def read_text(self, name: str) -> str | None: ...
    def remove(self, names: list[str]) -> None: ...


class DirectoryDestination:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.sent_bytes = 0
        self._lock = threading.Lock()

    def _dir(self) -> Path:
        """The per-host directory, made if missing; its parent, the destination, never is: a
        missing one is a NAS share not mounted, and a publish there would fill the box's disk."""
        if not self.path.parent.is_dir():
            raise AoebootError(
                f"the publish destination {self.path.parent} is not there "
                "(the NAS's share not mounted?)"
            )
        try:
            self.path.mkdir(exist_ok=True)
        except OSError as err:
            raise AoebootError(f"cannot create {self.path}: {err.strerror}") from None
        return self.path

    def listing(self) -> dict[str, int]:
        directory = self._dir()
        return {
            p.name: p.stat().st_size
            for p in directory.iterdir()
            if p.is_file() and not p.name.startswith(".")
        }

    def leftovers(self) -> list[str]:
        return sorted(p.name for p in self._dir().iterdir() if is_leftover(p.name))

    def upload(self, local: Path, stem: str) -> tuple[str, str]:
        """Copy `local` as STEM-SHA12 in one pass: hash what is written, name it after that."""
        return self._copy(local, lambda digest: f"{stem}-{digest[:12]}")

    def put(self, local: Path, name: str) -> None:
        self._copy(local, lambda digest: name)

    def _copy(self, local: Path, naming: Callable[[str], str]) -> tuple[str, str]:
        """Copy, naming the file after the hash of what was written; it gets that name only
        once complete and synced (see copy_and_hash: the hash costs little beyond a copy)."""
        directory = self._dir()
        fd, tmp = tempfile.mkstemp(prefix=".upload.", dir=directory)
        try:
            with open(local, "rb") as src:
                size = os.fstat(src.fileno()).st_size
                digest = copy_and_hash(src.fileno(), fd, size)
            os.chmod(tmp, 0o644)
            name = safe_name(naming(digest), "file name")
            os.replace(tmp, directory / name)  # complete and synced: now it may be seen
            fsync_dir(directory)
            with self._lock:  # uploads may run side by side
                self.sent_bytes += size
            return name, digest
        except OSError as err:
            raise AoebootError(
                f"cannot publish {local.name} to {directory}: {err.strerror}"
            ) from None
        finally:
            os.close(fd)
            if os.path.exists(tmp):
                os.unlink(tmp)

    def write_text(self, name: str, text: str) -> None:
        atomic_write(self._dir() / safe_name(name, "file name"), text)
        self.sent_bytes += len(text.encode())

    def read_text(self, name: str) -> str | None:
        try:
            return (self._dir() / name).read_text()  # a NAS away is an error, never "none"
        except FileNotFoundError:
            return None
        except OSError as err:
            raise AoebootError(f"cannot read {self.path / name}: {err.strerror}") from None

    def remove(self, names: list[str]) -> None:
        for name in names:
            try:
                (self.path / _removable(name)).unlink()
            except FileNotFoundError:
                pass
            except OSError as err:
                raise AoebootError(f"cannot remove {self.path / name}: {err.strerror}") from None


@dataclass
class SshDestination:
    """rsync over ssh. rsync writes each file under a temporary name and renames it when complete;
    its transfer is checksummed. BatchMode: a missing key or unknown host key fails, never asks."""

    user: str | None
    host: str
    port: int | None
    path: str
    identity: Path | None = None
    known_hosts: Path | None = None
    sent_bytes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @classmethod
    def parse(
        cls, url: str, identity: Path | None, known_hosts: Path | None, subdir: str
    ) -> SshDestination:
        parsed = parse_ssh_url(url)
        path = parsed.path.rstrip("/") + "/" + safe_name(subdir, "host name")
        return cls(parsed.user, parsed.host, parsed.port, path, identity, known_hosts)

    def _ssh(self) -> list[str]:
        argv = [
            "ssh",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "ConnectTimeout=10",
        ]
        if self.port:
            argv += ["-p", str(self.port)]
        if self.identity:
            argv += ["-i", str(self.identity)]
        if self.known_hosts:
            argv += ["-o", f"UserKnownHostsFile={self.known_hosts}"]
        return argv

    def _remote(self, name: str = "") -> str:
        return f"{self.user + '@' if self.user else ''}{self.host}:{self.path}/{name}"

    def _rsync(self, *args: str) -> str:
        # rsync runs ssh itself: -e takes one string, split by rsync on blanks; every part of it
        # is a fixed option or a validated path, and none may hold a blank.
        parts = self._ssh()
        if any(" " in part for part in parts):
            raise AoebootError("ssh identity and known_hosts paths must not contain blanks")
        try:
            out: str = run(["rsync", "-e", " ".join(parts), *args], timeout=600).stdout
        except CommandFailed as err:
            # rsync's last line ("error in rsync protocol data stream") hides why ssh failed,
            # which ssh said first: "Host key verification failed.", "Connection refused"
            said = [
                ln.strip()
                for ln in err.stderr.splitlines()
                if ln.strip() and not ln.startswith("rsync")
            ]
            if not said:
                raise
            raise AoebootError(f"{err.message}; ssh: {said[0]}") from None
        return out

    def _files(self) -> dict[str, int]:
        empty = tempfile.mkdtemp()
        try:
            # An empty rsync makes the host directory, but never its parents (no --mkpath):
            # a destination that is not there fails, as a NAS that is away.
            self._rsync("-r", empty + "/", self._remote())
        finally:
            os.rmdir(empty)
        found = {}
        for line in self._rsync("--list-only", self._remote()).splitlines():
            fields = line.split()
            if len(fields) >= 5 and fields[0].startswith("-"):
                found[fields[-1]] = int(fields[1].replace(",", ""))
        return found

    def listing(self) -> dict[str, int]:
        return {n: s for n, s in self._files().items() if not n.startswith(".")}

    def leftovers(self) -> list[str]:
        return sorted(n for n in self._files() if is_leftover(n))

    def upload(self, local: Path, stem: str) -> tuple[str, str]:
        digest = sha256(local)
        name = f"{stem}-{digest[:12]}"
        self.put(local, name)
        return name, digest

    def put(self, local: Path, name: str) -> None:
        out = self._rsync(
            "--checksum",
            "--chmod=F644",
            "--stats",
            str(local),
            self._remote(safe_name(name, "file name")),
        )
        match = re.search(r"Total bytes sent: ([0-9,]+)", out)
        with self._lock:  # uploads may run side by side
            self.sent_bytes += (
                int(match.group(1).replace(",", "")) if match else local.stat().st_size
            )

    def write_text(self, name: str, text: str) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / safe_name(name, "file name")
            local.write_text(text)
            self.put(local, name)

    def read_text(self, name: str) -> str | None:
        if name not in self.listing():
            return None
        with tempfile.TemporaryDirectory() as tmp:
            self._rsync(self._remote(safe_name(name, "file name")), tmp + "/")
            return (Path(tmp) / name).read_text()

    def remove(self, names: list[str]) -> None:
        if not names:
            return
        empty = tempfile.mkdtemp()
        try:
            # Delete exactly these names: sync an empty dir, including only them.
            filters = [f"--include=/{_removable(n)}" for n in names] + ["--exclude=*"]
            self._rsync("-r", "--delete", *filters, empty + "/", self._remote())
        finally:
            os.rmdir(empty)


def open_destination(
    url: str, host: str, identity: Path | None = None, known_hosts: Path | None = None
) -> Destination:
    """The destination for `url` (a directory or ssh://...), in the per-host subdirectory `host`."""
    if url.startswith("ssh://"):
        return SshDestination.parse(url, identity, known_hosts, host)
    return DirectoryDestination(Path(url) / safe_name(host, "host name"))
