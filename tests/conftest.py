"""Fixtures every test can ask for by name; the plain helpers are in tests/helpers.py."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests.helpers import require_programs, require_root
from tests.lab import SIZES, Lab, serve
from tests.sysroot import make_sysroot

# No test here is about time (bench/ measures that): a per-example deadline only fails busy runs.
settings.register_profile("aoeboot", deadline=None)
settings.load_profile("aoeboot")


@pytest.fixture(scope="session")
def aoe_initrd(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
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


@pytest.fixture
def sysroot(tmp_path: Path) -> Callable[..., Path]:
    """Makes the test's fake installed system, tmp_path/sysimage, from make_sysroot's keywords
    (tests/sysroot.py): `sysroot(kver=..., entries=..., config=...)`."""
    return functools.partial(make_sysroot, tmp_path / "sysimage")


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    """vblade serving e11.0 and e11.1 (SIZES) to the client namespace's eth0."""
    with serve(tmp_path, SIZES) as made:
        yield made


# Fixtures that run a real dracut build: a test that uses one (even through another fixture)
# carries the `dracut` marker, so `-m "not dracut"` really leaves every dracut run out.
DRACUT_FIXTURES = {"aoe_initrd", "dracut_base"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if DRACUT_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.dracut)
