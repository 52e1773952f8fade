"""Benchmarks that print figures against their issues' goals. Each is a module run from the
repository's root, as root: `python -m bench.NAME --help`."""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
