"""The NAS side: vblade serving disk images as AoE targets inside a namespace."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from aoelab.cache import cache_dir
from aoelab.netns import Namespace

NASCACHE_SOURCE = Path(__file__).parent / "files" / "nascache.c"


def nascache_library() -> Path:
    """The NAS's volatile write cache (files/nascache.c) built for LD_PRELOAD, once per source."""
    source = NASCACHE_SOURCE.read_bytes()
    built = cache_dir() / "nascache" / f"nascache-{hashlib.sha256(source).hexdigest()[:16]}.so"
    if not built.exists():
        built.parent.mkdir(parents=True, exist_ok=True)
        partial = built.with_suffix(f".{os.getpid()}.tmp")
        subprocess.run(
            [
                "cc",
                "-O2",
                "-Wall",
                "-Werror",
                "-shared",
                "-fPIC",
                "-o",
                str(partial),
                str(NASCACHE_SOURCE),
                "-ldl",
            ],
            check=True,
        )
        partial.rename(built)
    return built


def sparse_image(path: Path, size: int) -> Path:
    """A sparse file of `size` bytes (vblade exports size // 512 sectors)."""
    with open(path, "wb") as handle:
        handle.truncate(size)
    return path


class Vblade:
    """`vblade SHELF SLOT IFACE IMAGE` running in `ns` until stopped (or the namespace dies)."""

    def __init__(
        self,
        ns: Namespace,
        shelf: int,
        slot: int,
        iface: str,
        image: Path,
        argv: Sequence[str] | None = None,
        volatile: bool = False,
    ) -> None:
        """With `argv`, that command line exactly (`aoeboot nas-config --format vblade`'s).
        `volatile`: behind a NAS page cache that power_cut() loses (files/nascache.c); vblade's
        -s (O_SYNC) writes through it."""
        command = list(argv) if argv else ["vblade", str(shelf), str(slot), iface, str(image)]
        env = None
        if volatile:
            env = {
                **os.environ,
                "LD_PRELOAD": str(nascache_library()),
                "AOELAB_NASCACHE_FILE": command[-1],
            }
        self.proc = ns.popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        time.sleep(0.1)
        if self.proc.poll() is not None:
            raise RuntimeError(f"{' '.join(command)} exited at once ({self.proc.returncode})")

    def power_cut(self) -> None:
        """The NAS loses power: vblade and whatever its cache had not written back are gone."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> Vblade:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
