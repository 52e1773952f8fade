"""The tree stays clean: `ruff check .` over the repository, `mypy aoeboot` over the package."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

from tests.conftest import REPO, _missing


def _run(module: str, *args: str) -> subprocess.CompletedProcess:
    # a missing linter is a skip here, a failure under CI (tools/setup installs both)
    if importlib.util.find_spec(module) is None:
        _missing(f"Python module {module!r} not installed")
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                          cwd=REPO, check=False, timeout=300)


def test_ruff_clean():
    out = _run("ruff", "check", ".")
    assert out.returncode == 0, out.stdout + out.stderr


def test_mypy_clean():
    out = _run("mypy", "aoeboot")
    assert out.returncode == 0, out.stdout + out.stderr
