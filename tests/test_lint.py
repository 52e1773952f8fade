"""Every Python and shell file in the tree passes its linters: ruff (check and format) and
mypy --strict (pyproject.toml) for Python, shellcheck and shfmt for shell (style in
.editorconfig, shellcheck's settings for the dracut module in dracut/.shellcheckrc)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO, missing, require_programs

# Every shell script in the tree; test_every_shell_script_is_linted keeps the list whole.
SHELL_SCRIPTS = sorted(str(p.relative_to(REPO)) for p in (REPO / "dracut").rglob("*.sh")) + [
    "kernel-install.d/60-aoeboot.install",
    "tools/setup",
    "tools/test",
    "tools/demo",
    "tools/install-files",
    ".ci/run",
    "aoelab/files/20-grub.install",
]
# Python with no .py, which `ruff check .` passes over; test_every_script_is_linted keeps it whole.
PYTHON_SCRIPTS = ["aoelab/files/aoelab-resilience"]
MYPY_PATHS = ["aoeboot", "aoelab", "bench", "tools/build-pyz.py", *PYTHON_SCRIPTS, "tests"]


def _run(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    # a missing linter is a skip here, a failure under CI (tools/setup installs both)
    if importlib.util.find_spec(module) is None:
        missing(f"Python module {module!r} not installed")
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
        timeout=300,
    )


def test_ruff_clean():
    out = _run("ruff", "check", ".", *PYTHON_SCRIPTS)
    assert out.returncode == 0, out.stdout + out.stderr


def test_ruff_format_clean():
    out = _run("ruff", "format", "--check", "--diff", ".", *PYTHON_SCRIPTS)
    assert out.returncode == 0, "ruff format fixes these:\n" + out.stdout + out.stderr


def test_mypy_clean():
    out = _run("mypy", *MYPY_PATHS)
    assert out.returncode == 0, out.stdout + out.stderr


def _run_program(*argv: str) -> subprocess.CompletedProcess[str]:
    # a missing program is a skip here, a failure under CI (tools/setup installs both)
    require_programs(argv[0])
    return subprocess.run(
        list(argv), capture_output=True, text=True, cwd=REPO, check=False, timeout=300
    )


def test_shell_scripts_exist():
    absent = [s for s in SHELL_SCRIPTS if not (REPO / s).is_file()]
    assert not absent, f"listed in SHELL_SCRIPTS but not in the tree: {absent}"


def test_shellcheck_clean():
    out = _run_program("shellcheck", *SHELL_SCRIPTS)
    assert out.returncode == 0, out.stdout + out.stderr


def test_shfmt_clean():
    # No indent/-ci/-bn/-sr flags: shfmt takes them from .editorconfig (any such flag would make
    # it ignore the file). -s because Debian 12's shfmt 3.6 does not read `simplify` from it.
    out = _run_program("shfmt", "-s", "-d", *SHELL_SCRIPTS)
    assert out.returncode == 0, "shfmt -s -w fixes these:\n" + out.stdout + out.stderr


def _interpreter(path: Path) -> bytes:
    """The program a script's #! line names (through env), or b"" for none."""
    with path.open("rb") as f:
        first = f.readline()
    words = first[2:].split() if first.startswith(b"#!") else []
    if words and words[0].endswith(b"/env"):
        words = words[1:]  # #!/usr/bin/env bash
    return words[0].split(b"/")[-1] if words else b""


def test_every_script_is_linted():
    # a new script with a sh/bash shebang must join SHELL_SCRIPTS; a Python one without .py,
    # PYTHON_SCRIPTS (and so the tests above)
    try:
        files = subprocess.run(
            ["git", "ls-files", "-z"],
            capture_output=True,
            text=True,
            cwd=REPO,
            check=True,
            timeout=60,
        ).stdout.split("\0")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: cannot list the tracked files")
    shell, python = set(), set()
    for name in filter(None, files):
        path = REPO / name
        if not path.is_file() or path.is_symlink() or name.endswith(".py"):
            continue
        interpreter = _interpreter(path)
        if interpreter in (b"sh", b"bash", b"dash"):
            shell.add(name)
        elif interpreter.startswith(b"python"):
            python.add(name)
    assert shell - set(SHELL_SCRIPTS) == set(), "shell scripts not in SHELL_SCRIPTS"
    assert python - set(PYTHON_SCRIPTS) == set(), "Python scripts not in PYTHON_SCRIPTS"
