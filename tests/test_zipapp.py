"""tools/build-pyz.py: aoeboot.pyz runs with the installer's bare python3 (no aoeboot, no
site-packages), is pure Python, and builds reproducibly from the wheel cache."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

from aoeboot import __version__
from tests.helpers import REPO, missing

BUILD = REPO / "tools" / "build-pyz.py"
# Debian's python3, like the installer's: run with -I -S it has no click, pyudev or aoeboot
BARE_PYTHON = Path("/usr/bin/python3")
COMMANDS = [
    "cmdline",
    "discover",
    "install-entry",
    "kernel-install",
    "nas-config",
    "publish",
    "status",
    "watch",
]


def build(out: Path, **env: str) -> subprocess.CompletedProcess[str]:
    # AOEBOOT_PYZ_CACHE as the caller has it (default /var/cache/aoeboot-pyz): runs after the
    # first download wheels from there, without the network
    return subprocess.run(
        [sys.executable, str(BUILD), str(out)],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
        env={**os.environ, **env},
    )


@pytest.fixture(scope="session")
def pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """aoeboot.pyz, built once per session (downloads from PyPI only when the cache is cold)."""
    if importlib.util.find_spec("pip") is None:
        missing("Python module 'pip' not installed (building the pyz needs it)")
    out = tmp_path_factory.mktemp("pyz") / "aoeboot.pyz"
    proc = build(out)
    if proc.returncode != 0:
        pytest.fail(f"tools/build-pyz.py failed: {proc.stderr.strip()}")
    assert proc.stdout.startswith(f"{out} "), proc.stdout
    return out


def bare(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`python3 -I -S ARGV...`: no site-packages (so none of Debian's python3-click or our venv
    leaks in), no PYTHONPATH, no current directory on sys.path."""
    if not BARE_PYTHON.exists():
        missing(f"{BARE_PYTHON} not installed")
    return subprocess.run(
        [str(BARE_PYTHON), "-I", "-S", *argv],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=cwd,
    )


def run_pyz(pyz: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return bare(str(pyz), *args, cwd=pyz.parent)


def test_version(pyz):
    out = run_pyz(pyz, "--version")
    assert (out.returncode, out.stdout, out.stderr) == (0, f"aoeboot, version {__version__}\n", "")


def test_help_lists_every_command(pyz):
    out = run_pyz(pyz, "--help")
    assert out.returncode == 0, out.stderr
    listed = out.stdout.split("Commands:\n")[1].splitlines()
    assert [line.split()[0] for line in listed if line.strip()] == COMMANDS


def test_nas_config_prints_a_dnsmasq_fragment(pyz):
    out = run_pyz(
        pyz,
        "nas-config",
        "--mac",
        "52:54:00:12:34:56",
        "--target",
        "e11.0p1",
        "--format",
        "dnsmasq",
    )
    assert out.returncode == 0, out.stderr
    assert "dhcp-host=52:54:00:12:34:56" in out.stdout
    assert "root-path,aoe:e11.0p1" in out.stdout


def test_install_entry_help_and_run_on_an_empty_root(pyz, tmp_path):
    out = run_pyz(pyz, "install-entry", "--help")
    assert out.returncode == 0, out.stderr
    assert "--target" in out.stdout and "--root" in out.stdout
    # no kernels under the root, so no dracut: only the configuration files are written
    out = run_pyz(pyz, "install-entry", "--target", "e11.0p1", "--root", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert "e11.0p1" in (tmp_path / "etc/kernel/cmdline").read_text()


def test_cmdline_with_nothing_configured_exits_1(pyz, tmp_path):
    out = run_pyz(pyz, "cmdline", "--root", str(tmp_path))
    assert (out.returncode, out.stdout) == (1, ""), out.stderr


def test_bad_target_is_one_line_exit_2(pyz):
    out = run_pyz(
        pyz, "nas-config", "--mac", "52:54:00:12:34:56", "--target", "e11", "--format", "dnsmasq"
    )
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert out.stderr.startswith("aoeboot: invalid AoE target 'e11'"), out.stderr


def test_pyudev_loads_libudev_from_inside_the_zip(pyz):
    assert run_pyz(pyz, "discover", "--help").returncode == 0
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import json, pyudev, aoeboot.driver;"
        "context = pyudev.Context();"
        "print(json.dumps([pyudev.__file__, context.sys_path,"
        " len(list(context.list_devices(subsystem='net')))]))"
    )
    out = bare("-c", code, str(pyz), cwd=pyz.parent)
    assert out.returncode == 0, out.stderr
    where, sys_path, netdevs = json.loads(out.stdout)
    assert where.startswith(f"{pyz}/pyudev/")  # the zip's pyudev, not one from elsewhere
    assert sys_path == "/sys" and netdevs >= 1  # lo at least


def test_archive_is_pure_python_without_tests_or_bytecode(pyz):
    assert pyz.read_bytes().startswith(b"#!/usr/bin/env python3\n")
    with zipfile.ZipFile(pyz) as archive:
        infos = archive.infolist()
    names = [info.filename for info in infos]
    assert {"__main__.py", "aoeboot/cli/__init__.py", "click/core.py"} <= set(names)
    assert "pyudev/__init__.py" in names
    assert not [n for n in names if n.startswith("packaging/")]  # not a dependency
    assert not [n for n in names if ".so" in n.rsplit("/", 1)[-1] or n.endswith(".pyd")]
    assert not [
        n
        for n in names
        if {"tests", "test", "__pycache__"} & set(n.split("/"))
        or n.endswith((".pyc", "/conftest.py"))
    ]
    dist_info = {n.split("/", 1)[1] for n in names if n.split("/")[0].endswith(".dist-info")}
    assert "METADATA" in dist_info and not {"RECORD", "INSTALLER", "WHEEL"} & dist_info
    assert all(info.compress_type == zipfile.ZIP_DEFLATED for info in infos if info.file_size)
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}


def test_rebuild_is_identical_and_needs_no_index(pyz, tmp_path):
    # a warm build takes its wheels from the cache: with pip barred from every index it still
    # builds, and the same bytes, whatever the time zone and umask
    again = tmp_path / "again.pyz"
    proc = build(again, PIP_NO_INDEX="1", TZ="Asia/Tokyo")
    assert proc.returncode == 0, proc.stderr
    assert again.read_bytes() == pyz.read_bytes()
    assert os.stat(again).st_mode & 0o777 == 0o755


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_pyz", BUILD)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_prune_fails_on_a_compiled_extension(tmp_path):
    tool = _tool()
    (tmp_path / "fast").mkdir()
    (tmp_path / "fast" / "_speedups.cpython-311-x86_64-linux-gnu.so").write_bytes(b"\x7fELF")
    with pytest.raises(tool.BuildError, match="compiled extension module"):
        tool.prune(tmp_path)


def test_prune_keeps_code_licences_and_metadata_only(tmp_path):
    tool = _tool()
    files = [
        "pkg/__init__.py",
        "pkg/testing.py",
        "pkg/__pycache__/x.cpython-311.pyc",
        "pkg/tests/test_x.py",
        "tests/conftest.py",
        "bin/pkg",
        "pkg-1.0.dist-info/METADATA",
        "pkg-1.0.dist-info/RECORD",
        "pkg-1.0.dist-info/INSTALLER",
        "pkg-1.0.dist-info/LICENSE.txt",
        "pkg-1.0.dist-info/licenses/COPYING",
    ]
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    tool.prune(tmp_path)
    left = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert left == [
        "pkg-1.0.dist-info/LICENSE.txt",
        "pkg-1.0.dist-info/METADATA",
        "pkg-1.0.dist-info/licenses/COPYING",
        "pkg/__init__.py",
        "pkg/testing.py",
    ]


def test_too_old_python_is_one_line_exit_2(pyz, tmp_path):
    # RHEL 8's installer has python3.6: the pyz's first lines say so instead of a traceback
    fake = tmp_path / "main.py"
    with zipfile.ZipFile(pyz) as archive:
        main = archive.read("__main__.py").decode()
    fake.write_text(re.sub(r"sys.version_info < \(\d+, \d+\)", "sys.version_info < (99, 0)", main))
    out = bare(str(fake), cwd=tmp_path)
    assert out.returncode == 2
    assert re.fullmatch(r"aoeboot: needs Python \d+\.\d+ or newer, this is 3\.\d+\n", out.stderr), (
        out.stderr
    )


def test_discover_from_the_zip_finds_the_nas_targets(pyz, lab):
    # raw AoE frames and the rest of discover, all from inside the zip, with the bare python3
    out = lab.client.run(
        [str(BARE_PYTHON), "-I", "-S", str(pyz), "discover", "--userspace", "--json", "-i", "eth0"],
        check=False,
        cwd=pyz.parent,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert [row["target"] for row in json.loads(out.stdout)] == ["e11.0", "e11.1"]
