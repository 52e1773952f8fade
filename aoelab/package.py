"""The working tree's aoeboot in an image, put there and taken away as a package would be: its
wheel unpacked by the image's own python3 into dist-packages, console scripts in /usr/bin, and
tools/install-files for everything else (dracut module, plugin, units, config, man page,
completion)."""

from __future__ import annotations

import configparser
import shutil
import sys
import tempfile
from pathlib import Path

from aoelab.chroot import chroot_run
from aoelab.imagerun import SysImageError, run

REPO = Path(__file__).resolve().parent.parent


def build_wheel(out: Path) -> Path:
    """A wheel of the working tree's aoeboot (built from a copy, so no build/ in the checkout)."""
    with tempfile.TemporaryDirectory(prefix="aoeboot-src.") as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        shutil.copytree(
            REPO / "aoeboot", src / "aoeboot", ignore=shutil.ignore_patterns("__pycache__")
        )
        for name in ("pyproject.toml", "README.md", "LICENSE"):
            shutil.copy2(REPO / name, src / name)
        out.mkdir(parents=True, exist_ok=True)
        run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "-q",
                "--no-deps",
                "--no-build-isolation",
                "-w",
                str(out),
                str(src),
            ]
        )
    wheels = sorted(out.glob("aoeboot-*.whl"))
    if not wheels:
        raise SysImageError(f"pip wheel left no aoeboot wheel in {out}")
    return wheels[-1]


SITE = "usr/lib/python3/dist-packages"  # Debian's place for packaged Python modules

CONSOLE_SCRIPT = """#!/usr/bin/python3
import sys

from {module} import {function}

if __name__ == "__main__":
    sys.exit({function}())
"""


def install_aoeboot(target: Path) -> str:
    """Install the working tree's aoeboot into the mounted `target` as a package would: the wheel
    unpacked by the image's own python3 into dist-packages, /usr/bin/aoeboot, then
    tools/install-files for the dracut module, plugin, units, config, man page and completion.
    Returns what `aoeboot --version` says inside the image."""
    with tempfile.TemporaryDirectory(prefix="aoeboot-wheel.", dir=target / "var/tmp") as tmp:
        wheel = build_wheel(Path(tmp))
        for old in [*(target / SITE).glob("aoeboot"), *(target / SITE).glob("aoeboot-*-info")]:
            shutil.rmtree(old)
        inside = "/" + str(wheel.relative_to(target))
        chroot_run(target, ["python3", "-m", "zipfile", "-e", inside, "/" + SITE])
    _write_console_scripts(target)
    chroot_run(target, ["python3", "-m", "compileall", "-q", f"/{SITE}/aoeboot"])
    run([REPO / "tools/install-files", target])
    version: str = chroot_run(target, ["aoeboot", "--version"]).stdout
    return version.strip()


def package_files() -> tuple[list[str], list[str]]:
    """What tools/install-files installs, relative to the root and sorted: (files and symlinks,
    the directories it makes that hold them or nothing, i.e. the package's own directories such
    as modules.d/59aoe and /var/lib/aoeboot, not /usr or /usr/lib above them). Run into a
    temporary DESTDIR and listed."""
    with tempfile.TemporaryDirectory(prefix="aoeboot-destdir.") as tmp:
        dest = Path(tmp)
        run([REPO / "tools/install-files", dest])
        found = list(dest.rglob("*"))
        files = [p for p in found if p.is_symlink() or not p.is_dir()]
        dirs = [
            p
            for p in found
            if p.is_dir()
            and not p.is_symlink()
            and (not any(p.iterdir()) or any(f.parent == p for f in files))
        ]
        return (
            sorted(str(p.relative_to(dest)) for p in files),
            sorted(str(p.relative_to(dest)) for p in dirs),
        )


def remove_aoeboot(target: Path) -> list[str]:
    """Remove what install_aoeboot put into `target` as a package manager removes a package:
    every file tools/install-files installs, the Python package with its dist-info, the console
    scripts, then the package's own directories (package_files) left empty. What the package
    does not install stays, as dpkg or a removal by hand leaves it: the drop-in
    /etc/dracut.conf.d/90-aoeboot.conf, written by `aoeboot install-entry` (rpm removes it only
    because the spec lists it as %ghost).
    Returns the removed paths, relative to `target`."""
    removed = []
    scripts = [f"usr/bin/{name}" for name, _ref in _console_scripts(target)]
    files, dirs = package_files()
    for rel in [*scripts, *files]:
        path = target / rel
        if path.is_symlink() or path.exists():
            path.unlink()
            removed.append(rel)
    for tree in [*(target / SITE).glob("aoeboot"), *(target / SITE).glob("aoeboot-*-info")]:
        shutil.rmtree(tree)
        removed.append(str(tree.relative_to(target)))
    for rel in sorted(dirs, key=len, reverse=True):
        if (target / rel).is_dir() and not any((target / rel).iterdir()):
            (target / rel).rmdir()
            removed.append(rel)
    return removed


def _console_scripts(target: Path) -> list[tuple[str, str]]:
    """(name, "module:function") of each console script in the entry points of the aoeboot
    unpacked into `target`."""
    parser = configparser.ConfigParser()
    for info in (target / SITE).glob("aoeboot-*.dist-info"):
        parser.read(info / "entry_points.txt")
    return parser.items("console_scripts") if parser.has_section("console_scripts") else []


def _write_console_scripts(target: Path) -> None:
    for name, ref in _console_scripts(target):
        module, function = ref.split(":")
        script = target / "usr/bin" / name
        script.write_text(CONSOLE_SCRIPT.format(module=module, function=function))
        script.chmod(0o755)
