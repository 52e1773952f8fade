"""The one way aoeboot runs programs: argument lists, never shell strings."""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Union

from aoeboot.errors import AoebootError

log = logging.getLogger(__name__)

Arg = Union[str, Path]


class CommandFailed(AoebootError):
    """A program that ran and failed; `stderr` for callers that know where its cause is."""

    def __init__(self, message: str, stderr: str) -> None:
        super().__init__(message)
        self.stderr = stderr


def find_program(name: str) -> str | None:
    """Where `name` is, looking in the sbin directories too (kernel-install runs with a thin
    PATH)."""
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin:/usr/bin:/bin"
    return shutil.which(name, path=path)


def run(
    argv: Sequence[Arg],
    *,
    check: bool = True,
    capture: bool = True,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `argv`; on failure raise AoebootError naming the command, how it ended (exit code or
    signal) and its last line of stderr."""
    args = [str(a) for a in argv]
    line = shlex.join(args)  # what a user would type to run it again
    program = find_program(args[0]) if "/" not in args[0] else args[0]
    if program is None:
        raise AoebootError(f"{args[0]}: program not found", hint="install it or fix PATH")
    log.debug("running %s", line)
    try:
        proc = subprocess.run(
            [program, *args[1:]],
            check=False,
            text=True,
            errors="replace",  # tools like lsinitrd print binary bytes too
            input=input,
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.PIPE if capture else None,
            env=dict(env) if env is not None else None,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise AoebootError(f"{line}: no answer after {timeout} s") from None
    if check and proc.returncode != 0:
        detail = (proc.stderr or "").strip().splitlines()
        last = f": {detail[-1]}" if detail else ""
        raise CommandFailed(f"{line} failed ({_ending(proc.returncode)}){last}", proc.stderr or "")
    return proc


def _ending(returncode: int) -> str:
    """How a program ended, from its return code: "exit code 3", "killed by SIGKILL"."""
    if returncode >= 0:
        return f"exit code {returncode}"
    try:
        return f"killed by {signal.Signals(-returncode).name}"
    except ValueError:
        return f"killed by signal {-returncode}"
