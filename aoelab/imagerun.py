"""The lab's one way to run a host program while it builds or uses a system image: an argument
list, never a shell string; output captured as text; SysImageError with the end of stderr when
it fails.

Not aoeboot.run.run: callers here hand subprocess its own options (cwd, input, env) and catch
SysImageError, a failed lab step rather than a user's mistake (AoebootError).
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any


class SysImageError(RuntimeError):
    """A step of building or using the image failed; the message says which and why."""


def run(argv: Sequence[str | Path], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
    """Run `argv` (a list, never a shell string); raise SysImageError with its stderr."""
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    proc = subprocess.run([str(a) for a in argv], **kwargs)
    if proc.returncode != 0:
        err = proc.stderr if isinstance(proc.stderr, str) else ""
        raise SysImageError(
            f"{' '.join(map(str, argv))} failed ({proc.returncode}): {err.strip()[-2000:]}"
        )
    return proc
