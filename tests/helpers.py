"""Helpers the tests share: requirements that skip with a reason, or fail under CI, and the CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import NoReturn

import pytest

REPO = Path(__file__).resolve().parent.parent


def missing(reason: str) -> NoReturn:
    """Skip for `reason`; under CI every requirement is installed by .ci/run, so fail instead."""
    if os.environ.get("CI") == "true" or os.environ.get("AOEBOOT_NO_SKIP") == "1":
        pytest.fail(f"requirement missing under CI: {reason}")
    pytest.skip(reason)


def require_programs(*names: str) -> None:
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    for name in names:
        if shutil.which(name, path=path) is None:
            missing(f"program {name!r} not installed")


def require_files(*paths: Path) -> None:
    for path in paths:
        if not path.exists():
            missing(f"{path} missing (its package is not installed)")


def require_root() -> None:
    if os.geteuid() != 0:
        missing("needs root")


def aoeboot(
    *args: str, env: Mapping[str, str] | None = None, input: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a fresh interpreter, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "aoeboot", *args],
        capture_output=True,
        text=True,
        env=env,
        input=input,
        timeout=timeout,
        cwd=REPO,
    )
