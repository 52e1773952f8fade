"""Benchmarks that print figures against their issues' goals. Each is a module run from the
repository's root, as root: `python -m bench.NAME --help`."""

from __future__ import annotations

from pathlib import Path

from aoelab.kernel import Kernel, installed_kernel

REPO = Path(__file__).resolve().parent.parent


def kernel_with_aoe() -> Kernel:
    """The kernel the VM benches boot: the newest installed one whose modules have aoe.ko."""
    kernel = installed_kernel()
    if kernel is None:
        raise SystemExit("no installed kernel with aoe.ko (install linux-image-amd64)")
    return kernel
