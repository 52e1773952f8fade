"""The NAS side: vblade serving disk images as AoE targets inside a namespace."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from aoelab.netns import Namespace


def sparse_image(path: Path, size: int) -> Path:
    """A sparse file of `size` bytes (vblade exports size // 512 sectors)."""
    with open(path, "wb") as handle:
        handle.truncate(size)
    return path


class Vblade:
    """`vblade SHELF SLOT IFACE IMAGE` running in `ns` until stopped (or the namespace dies)."""

    def __init__(self, ns: Namespace, shelf: int, slot: int, iface: str, image: Path,
                 argv: Sequence[str] | None = None) -> None:
        """With `argv`, that command line exactly (`aoeboot nas-config --format vblade`'s)."""
        command = list(argv) if argv else ["vblade", str(shelf), str(slot), iface, str(image)]
        self.proc = ns.popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             stdin=subprocess.DEVNULL)
        time.sleep(0.1)
        if self.proc.poll() is not None:
            raise RuntimeError(f"{' '.join(command)} exited at once ({self.proc.returncode})")

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

