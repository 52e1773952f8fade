"""Shared test helpers: requirements that skip with a reason, or fail under CI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _missing(reason: str) -> None:
    # Under CI every requirement is installed by .ci/run: a missing one is a failure, not a skip.
    if os.environ.get("CI") == "true" or os.environ.get("AOEBOOT_NO_SKIP") == "1":
        pytest.fail(f"requirement missing under CI: {reason}")
    pytest.skip(reason)


def require_programs(*names: str) -> None:
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    for name in names:
        if shutil.which(name, path=path) is None:
            _missing(f"program {name!r} not installed")


def require_files(*paths: Path) -> None:
    for path in paths:
        if not path.exists():
            _missing(f"{path} missing (its package is not installed)")


def require_root() -> None:
    if os.geteuid() != 0:
        _missing("needs root")


def aoeboot(*args: str, env=None, input=None, timeout=120) -> subprocess.CompletedProcess:
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


@pytest.fixture(scope="session")
def aoe_initrd(tmp_path_factory):
    """(kver, path) of a small real initramfs with aoe.ko and our module, built once per session
    by dracut for the installed Debian kernel (about a minute)."""
    from aoelab import dracutdir
    from aoelab.kernel import installed_kernel

    require_root()
    require_programs("dracut", "lsinitrd")
    kernel = installed_kernel()
    if kernel is None:
        pytest.fail("no installed kernel with aoe.ko: install linux-image-amd64")
    work = tmp_path_factory.mktemp("aoe-initrd")
    return kernel.version, dracutdir.build(work / "initrd.img", kernel.version, work, systemd=False)
