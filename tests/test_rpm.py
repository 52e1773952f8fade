"""The RPM: spec/aoeboot.spec built by the real rpmbuild from the working tree, read back with rpm.

The build uses `--nodeps` (this Debian host has no rpm database of build dependencies) and, on
a host without Fedora's macros, the spec's own fallbacks. The shipped default config is checked
against aoeboot.config.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
from dataclasses import fields
from pathlib import Path

import pytest

from aoeboot import __version__, config
from aoeboot.config import BootConfig, Config, PublishConfig
from tests.helpers import REPO, require_programs

SPEC = REPO / "spec" / "aoeboot.spec"
CONF = REPO / "etc" / "aoeboot.conf"

DRACUT_MODULE = "/usr/lib/dracut/modules.d/59aoe"
EXECUTABLES = [
    "/usr/bin/aoeboot",
    "/usr/lib/kernel/install.d/60-aoeboot.install",
    "/usr/lib/udev/aoeboot-rename",
] + [f"{DRACUT_MODULE}/{p.name}" for p in sorted((REPO / "dracut/59aoe").glob("*.sh"))]
DATA_FILES = [
    f"{DRACUT_MODULE}/61-aoeboot.rules",
    f"{DRACUT_MODULE}/64-aoeboot-lvm.rules",
    f"{DRACUT_MODULE}/aoe-initqueue.rules",
    "/usr/lib/udev/rules.d/61-aoeboot.rules",  # aoetools owns 60-aoe.rules
    "/usr/lib/systemd/system/aoeboot-publish.service",
    "/usr/lib/systemd/system/aoeboot-publish.timer",
    "/usr/lib/systemd/system/aoeboot-watch.service",
    "/etc/aoeboot/aoeboot.conf",
    "/usr/share/bash-completion/completions/aoeboot",
    "/usr/share/licenses/aoeboot/LICENSE",
    "/usr/share/doc/aoeboot/README.md",
]
REQUIRES = [
    "dracut",
    "dracut-network",
    "kmod",
    "iproute",
    "systemd-udev",
    "python3dist(click)",
    "python3dist(pyudev)",
]
RECOMMENDS = ["python3-systemd", "rsync", "openssh-clients"]


def project_version() -> str:
    found = re.search(r'^version = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.MULTILINE)
    assert found, "no version in pyproject.toml"
    return found.group(1)


def source_tarball(dest: Path, version: str) -> Path:
    """Source0: the working tree as git sees it (tracked and untracked files, not ignored ones)."""
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    tarball = dest / f"aoeboot-{version}.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        for name in sorted(filter(None, listed)):
            if (REPO / name).is_file():  # tracked files deleted in the working tree are gone
                tar.add(REPO / name, arcname=f"aoeboot-{version}/{name}", recursive=False)
    return tarball


def rpm(*args: str) -> str:
    done = subprocess.run(["rpm", *args], check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"rpm {' '.join(args)}: {done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_programs("rpmbuild", "rpm", "git")
    top = tmp_path_factory.mktemp("rpmbuild")
    (top / "SOURCES").mkdir()
    (top / "tmp").mkdir()
    source_tarball(top / "SOURCES", project_version())
    built = subprocess.run(
        [
            "rpmbuild",
            "-bb",
            "--nodeps",
            "--define",
            f"_topdir {top}",
            "--define",
            f"_tmppath {top / 'tmp'}",
            str(SPEC),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if built.returncode != 0:
        pytest.fail(f"rpmbuild failed:\n{built.stdout[-3000:]}\n{built.stderr[-3000:]}")
    rpms = list((top / "RPMS").glob("*/*.rpm"))
    assert len(rpms) == 1, rpms
    return rpms[0]


def test_spec_version_is_the_project_version():
    spec_version = re.search(r"^Version:\s*(\S+)", SPEC.read_text(), re.MULTILINE)
    assert spec_version and spec_version.group(1) == project_version() == __version__


def test_package_is_noarch_and_versioned(package):
    info = rpm("-qp", "--qf", "%{NAME} %{VERSION} %{ARCH} %{LICENSE}", str(package))
    assert info == f"aoeboot {project_version()} noarch GPL-2.0-or-later"
    assert package.name.endswith(".noarch.rpm")


def test_file_list(package):
    files = rpm("-qlp", str(package)).split()
    missing = [path for path in EXECUTABLES + DATA_FILES if path not in files]
    assert not missing, f"not in the package: {missing}\n" + "\n".join(files)
    assert [f for f in files if re.fullmatch(r"/usr/share/man/man1/aoeboot\.1(\.gz)?", f)]
    assert not [f for f in files if f.startswith("/usr/lib64")]
    # Every module of the Python package, under a python3 site-packages in /usr/lib.
    sitelib = {f.rsplit("/", 2)[0] for f in files if re.search(r"/aoeboot/__init__\.py$", f)}
    assert len(sitelib) == 1 and re.fullmatch(
        r"/usr/lib/python3\.\d+/site-packages", next(iter(sitelib))
    )
    package = REPO / "aoeboot"
    modules = sorted(str(p.relative_to(package)) for p in package.rglob("*.py"))
    assert [m for m in modules if f"{next(iter(sitelib))}/aoeboot/{m}" not in files] == []
    # The whole dracut module, nothing more.
    shipped = sorted(f.rsplit("/", 1)[1] for f in files if f.startswith(DRACUT_MODULE + "/"))
    assert shipped == sorted(p.name for p in (REPO / "dracut/59aoe").iterdir())


def test_file_modes(package):
    modes: dict[str, str] = {}
    for line in rpm(
        "-qp", "--qf", "[%{FILEMODES:perms} %{FILENAMES}\n]", str(package)
    ).splitlines():
        mode, path = line.split(" ", 1)
        modes[path] = mode
    assert {path: modes[path] for path in EXECUTABLES} == {p: "-rwxr-xr-x" for p in EXECUTABLES}
    assert {path: modes[path] for path in DATA_FILES} == {p: "-rw-r--r--" for p in DATA_FILES}
    assert modes[DRACUT_MODULE] == modes["/etc/aoeboot"] == "drwxr-xr-x"


def _names(lines: str) -> list[str]:
    return [line.split()[0] for line in lines.splitlines() if line.strip()]


def test_requires_and_recommends(package):
    requires = _names(rpm("-qRp", str(package)))
    assert [name for name in REQUIRES if name not in requires] == [], requires
    recommends = _names(rpm("-qp", "--recommends", str(package)))
    assert sorted(recommends) == sorted(RECOMMENDS)


def test_the_dracut_dropin_goes_with_the_package(package):
    """install-entry writes it; rpm owns it as a ghost, so that erasing the package removes it
    (a drop-in naming a removed module would fail every later dracut run)."""
    flags = rpm("-qp", "--qf", "[%{FILEFLAGS:fflags} %{FILENAMES}\n]", str(package))
    assert "g /etc/dracut.conf.d/90-aoeboot.conf" in flags.splitlines(), flags


def test_config_is_noreplace(package):
    assert rpm("-qcp", str(package)).split() == ["/etc/aoeboot/aoeboot.conf"]
    flags = rpm("-qp", "--qf", "[%{FILEFLAGS:fflags} %{FILENAMES}\n]", str(package))
    assert "cn /etc/aoeboot/aoeboot.conf" in flags.splitlines()


def test_payload_runs(package, tmp_path):
    """The installed files work together: the entry script imports the shipped package."""
    require_programs("rpm2cpio", "cpio")
    cpio = subprocess.run(["rpm2cpio", str(package)], capture_output=True, check=True).stdout
    subprocess.run(["cpio", "-idm", "--quiet"], input=cpio, cwd=tmp_path, check=True)
    assert (tmp_path / "etc/aoeboot/aoeboot.conf").read_text() == CONF.read_text()
    sitelib = next(tmp_path.glob("usr/lib/python3.*/site-packages"))
    env = dict(os.environ, PYTHONPATH=str(sitelib))
    run = subprocess.run(
        [sys.executable, str(tmp_path / "usr/bin/aoeboot"), "--version"],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert run.returncode == 0 and __version__ in run.stdout, run.stderr
    where = subprocess.run(
        [sys.executable, "-c", "import aoeboot.cli; print(aoeboot.cli.__file__)"],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert where.stdout.strip() == str(sitelib / "aoeboot/cli/__init__.py"), where.stderr


def test_shipped_config_is_the_default():
    assert config.parse(CONF.read_text(), where=str(CONF)) == Config()


def test_shipped_config_documents_every_key_with_a_valid_example():
    text = CONF.read_text()
    keys = [f.name for f in fields(BootConfig)] + [f.name for f in fields(PublishConfig)]
    assert [k for k in keys if not re.search(rf"^#{k} =", text, re.MULTILINE)] == []
    # Each example, once uncommented, is a valid setting.
    example = config.parse(re.sub(r"^#(\w+ =)", r"\1", text, flags=re.MULTILINE), where=str(CONF))
    assert example.boot.target is not None and example.publish.destination is not None
