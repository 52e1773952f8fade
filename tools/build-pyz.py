#!/usr/bin/env python3
"""Build aoeboot.pyz: one file with aoeboot and its pure-Python dependencies, for a bare python3.

    tools/build-pyz.py [OUT]        (default: build/aoeboot.pyz in the checkout)

What it makes runs in the installer's shell, where only a bare python3 exists:
`python3 aoeboot.pyz discover`, `python3 aoeboot.pyz install-entry --root /mnt/sysimage ...`.

The dependencies are pyproject.toml's `dependencies`, resolved by pip for the oldest Python the
project supports (`requires-python`), pure-Python wheels only; the build fails if any of them
carries a compiled extension. The wheels pip downloads are kept under $AOEBOOT_PYZ_CACHE
(default /var/cache/aoeboot-pyz, else ~/.cache/aoeboot-pyz when that is not writable), one
directory per requirement set, so a second build needs no network; delete it to re-resolve.
The archive is reproducible: sorted, fixed timestamps ($SOURCE_DATE_EPOCH, default 1980-01-01)
and modes, no bytecode.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipapp
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

REPO = Path(__file__).resolve().parent.parent
PACKAGE = "aoeboot"
ENTRY_POINT = ("aoeboot.cli", "main")
INTERPRETER = "/usr/bin/env python3"
DEFAULT_OUT = REPO / "build" / "aoeboot.pyz"
DEFAULT_CACHE = Path("/var/cache/aoeboot-pyz")
ZIP_EPOCH = 315532800  # 1980-01-01 00:00:00 UTC, the earliest time a zip entry can hold
CACHE_FORMAT = 1  # bump when the cache layout changes

# What a compiled extension module or shared library looks like, whatever the platform.
COMPILED = re.compile(r"\.(so|pyd|dll|dylib)(\.|$)")
# Kept from each *.dist-info: the licence texts (click's BSD and pyudev's LGPL require
# their notice to travel with copies) and METADATA (what importlib.metadata reads).
KEEP_DIST_INFO = re.compile(r"^(METADATA|LICEN[CS]E.*|COPYING.*|NOTICE.*|AUTHORS.*|licenses)$")
TEST_DIRS = {"tests", "test"}
# zipapp's __main__.py for `--main MODULE:FN`, written by us (see build()), with a first line
# that even an old python3 (RHEL 8's installer has 3.6) runs: one line and exit 2, not a
# SyntaxError traceback from deep inside.
MAIN_PY = """\
# -*- coding: utf-8 -*-
import sys
if sys.version_info < {oldest!r}:
    sys.stderr.write("aoeboot: needs Python {oldest_text} or newer, this is %d.%d\\n"
                     % sys.version_info[:2])
    sys.exit(2)
import {module}
{module}.{fn}()
"""


class BuildError(Exception):
    """A problem the user can act on: printed as one line, exit 1."""


def die(message: str) -> NoReturn:
    raise BuildError(message)


def project() -> dict[str, object]:
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ImportError:
            die("reading pyproject.toml needs Python 3.11 (tomllib) or the tomli module")
    with open(REPO / "pyproject.toml", "rb") as handle:
        return dict(tomllib.load(handle)["project"])


def oldest_python(requires_python: str) -> str:
    """The X.Y of `>=X.Y` in requires-python (else this Python's): pip resolves for it, so every
    dependency it picks also runs on the oldest installer Python aoeboot supports (RHEL 9's
    3.9; newer ones run them too)."""
    found = re.search(r">=\s*(\d+\.\d+)", requires_python)
    return found.group(1) if found else "{}.{}".format(*sys.version_info[:2])


def pip(args: Sequence[str], what: str) -> None:
    argv = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        lines = [line.strip() for line in (proc.stderr + proc.stdout).splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("ERROR")]
        last = (errors or lines or [f"exit code {proc.returncode}"])[-1]
        die(f"pip could not {what}: {last}")


def cache_root() -> Path:
    configured = os.environ.get("AOEBOOT_PYZ_CACHE")
    candidates = (
        [Path(configured)]
        if configured
        else [
            DEFAULT_CACHE,
            Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "aoeboot-pyz",
        ]
    )
    for index, path in enumerate(candidates):
        try:
            path.mkdir(parents=True, exist_ok=True)
            if os.access(path, os.W_OK | os.X_OK):
                return path
        except OSError as err:
            if index == len(candidates) - 1:
                die(f"cache directory {path}: {err.strerror}")
    die(f"cache directory {candidates[-1]} is not writable (set AOEBOOT_PYZ_CACHE)")


def wheelhouse(requirements: list[str], python: str) -> Path:
    """The directory of wheels pip resolved for `requirements`: from the cache, else downloaded
    into it (atomically: a directory that exists is complete)."""
    key_text = json.dumps(
        {"format": CACHE_FORMAT, "python": python, "requirements": sorted(requirements)},
        sort_keys=True,
    )
    key = hashlib.sha256(key_text.encode()).hexdigest()[:16]
    root = cache_root()
    wheels = root / key
    if wheels.is_dir():
        return wheels
    partial = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=root))
    try:
        pip(
            [
                "download",
                "--quiet",
                "--only-binary=:all:",
                "--implementation",
                "py",
                "--abi",
                "none",
                "--platform",
                "any",
                "--python-version",
                python,
                "--dest",
                str(partial),
                "--",
                *requirements,
            ],
            "download pure-Python wheels",
        )
        (partial / "requirements.json").write_text(key_text + "\n")
        partial.chmod(0o755)
        try:
            partial.rename(wheels)
        except OSError:
            if not wheels.is_dir():  # not a concurrent build that got there first
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return wheels


def install_dependencies(stage: Path, wheels: Path) -> list[str]:
    """pip install --target the cached wheels (exactly those: the resolution is the cache's);
    returns 'name version' of each."""
    files = sorted(wheels.glob("*.whl"))
    if not files:
        die(f"no wheels in {wheels}: delete it and build again")
    for wheel in files:
        if not wheel.name.endswith("-none-any.whl"):
            die(f"{wheel.name} is not a pure-Python wheel")
    pip(
        [
            "install",
            "--quiet",
            "--no-index",
            "--no-deps",
            "--no-compile",
            "--only-binary=:all:",
            "--target",
            str(stage),
            "--",
            *map(str, files),
        ],
        "install the wheels",
    )
    return [" ".join(wheel.name.split("-")[:2]) for wheel in files]


def prune(stage: Path) -> None:
    """Drop what does not run: bytecode, scripts, tests, and dist-info but licences/METADATA.
    Fail on any compiled extension module."""
    shutil.rmtree(stage / "bin", ignore_errors=True)
    for path in sorted(stage.rglob("*"), reverse=True):  # children before their directory
        relative = path.relative_to(stage)
        parts = relative.parts
        if COMPILED.search(path.name):
            die(f"{relative} is a compiled extension module: the pyz must be pure Python")
        dist_info = parts[0].endswith(".dist-info")
        if (
            path.name == "__pycache__"
            or path.suffix in (".pyc", ".pyo")
            or any(part in TEST_DIRS for part in parts)
            or (dist_info and len(parts) > 1 and not KEEP_DIST_INFO.match(parts[1]))
        ):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()


def copy_package(stage: Path) -> None:
    """aoeboot's own modules from the checkout (what its wheel holds: the .py files), each
    compiled once here so that a syntax error fails the build, not the installer."""
    source = REPO / PACKAGE
    for path in sorted(source.rglob("*.py")):
        relative = path.relative_to(REPO)
        if "__pycache__" in relative.parts:
            continue
        text = path.read_text(encoding="utf-8")
        try:
            compile(text, str(relative), "exec", dont_inherit=True)
        except SyntaxError as err:
            die(f"{relative}:{err.lineno}: {err.msg}")
        out = stage / relative
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")


def write_zip(stage: Path, path: Path, epoch: int) -> None:
    """The tree as a zip that is the same bytes whatever the file system's order, the clock,
    the umask or the time zone: sorted entries, fixed times and modes, deflated."""
    stamp = time.gmtime(epoch)[:6]
    entries = sorted(stage.rglob("*"), key=lambda p: p.relative_to(stage).as_posix())
    with zipfile.ZipFile(path, "w") as archive:
        for entry in entries:
            name = entry.relative_to(stage).as_posix()
            if entry.is_dir():
                info = zipfile.ZipInfo(name + "/", stamp)
                info.external_attr = (0o40755 << 16) | 0x10  # MS-DOS directory flag
                archive.writestr(info, b"")
            else:
                info = zipfile.ZipInfo(name, stamp)
                info.external_attr = 0o100644 << 16
                archive.writestr(info, entry.read_bytes(), compress_type=zipfile.ZIP_DEFLATED)


def build(out: Path) -> str:
    meta = project()
    requirements = [str(r) for r in meta.get("dependencies", [])]  # type: ignore[attr-defined]
    python = oldest_python(str(meta.get("requires-python", "")))
    epoch = max(int(os.environ.get("SOURCE_DATE_EPOCH", ZIP_EPOCH)), ZIP_EPOCH)
    wheels = wheelhouse(requirements, python) if requirements else None

    with tempfile.TemporaryDirectory(prefix="aoeboot-pyz.") as tmp:
        stage = Path(tmp) / "stage"
        stage.mkdir()
        versions = install_dependencies(stage, wheels) if wheels else []
        prune(stage)
        copy_package(stage)
        module, fn = ENTRY_POINT
        oldest = tuple(int(n) for n in python.split("."))
        (stage / "__main__.py").write_text(
            MAIN_PY.format(module=module, fn=fn, oldest=oldest, oldest_text=python)
        )
        inner = Path(tmp) / "aoeboot.zip"
        write_zip(stage, inner, epoch)
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(f".{out.name}.tmp")
        # zipapp adds the #! line; from a directory it would store the files in the file
        # system's order (Python < 3.13) and stamp __main__.py with the clock: not reproducible.
        zipapp.create_archive(inner, partial, interpreter=INTERPRETER)
    partial.chmod(0o755)
    check_archive(partial)
    os.replace(partial, out)
    return ", ".join(versions)


def check_archive(pyz: Path) -> None:
    """The archive holds no compiled code, and runs with a python3 that has nothing but it."""
    with zipfile.ZipFile(pyz) as archive:
        for name in archive.namelist():
            if COMPILED.search(name.rsplit("/", 1)[-1]):
                die(f"{pyz.name} contains compiled code: {name}")
    proc = subprocess.run(
        [sys.executable, "-I", "-S", str(pyz), "--version"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if proc.returncode != 0 or PACKAGE not in proc.stdout:
        lines = (proc.stderr or proc.stdout).strip().splitlines() or [f"exit {proc.returncode}"]
        die(f"the built archive does not run: {lines[-1]}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="build-pyz", description="Build aoeboot.pyz, a single-file zipapp for a bare python3."
    )
    parser.add_argument(
        "out",
        nargs="?",
        type=Path,
        default=DEFAULT_OUT,
        help="where to write it (default: build/aoeboot.pyz in the checkout)",
    )
    args = parser.parse_args(argv)
    out: Path = args.out.absolute()
    try:
        versions = build(out)
    except BuildError as err:
        print(f"build-pyz: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"build-pyz: {err.filename or out}: {err.strerror}", file=sys.stderr)
        return 1
    except Exception as err:  # any other problem too: one line, never a traceback
        print(f"build-pyz: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    finally:
        partial = out.with_name(f".{out.name}.tmp")
        if partial.exists():
            partial.unlink()
    size = out.stat().st_size
    print(f"{out} {size} bytes ({size / 1024:.0f} KiB): aoeboot + {versions}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
