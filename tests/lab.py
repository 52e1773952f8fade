"""Fixtures shared by tests that need a NAS: namespaces, a veth link, vblade targets."""

from __future__ import annotations

import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator

import pytest

from aoelab.netns import Namespace, veth_pair
from aoelab.vblade import Vblade, sparse_image
from tests.conftest import require_programs, require_root

SIZES = {(11, 0): 64 << 20, (11, 1): 3 << 30}


@dataclass
class Lab:
    nas: Namespace
    client: Namespace
    blades: Dict[str, Vblade]

    def stop(self, name: str, sig: int = signal.SIGKILL) -> None:
        self.blades[name].proc.send_signal(sig)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    """NAS namespace (nas0) <-veth-> client namespace (eth0), vblade serving e11.0 and e11.1."""
    require_root()
    require_programs("ip", "vblade")
    with Namespace() as nas, Namespace() as client:
        veth_pair(nas, "nas0", client, "eth0")
        blades = {}
        try:
            for (shelf, slot), size in SIZES.items():
                image = sparse_image(tmp_path / f"e{shelf}.{slot}.img", size)
                blades[f"e{shelf}.{slot}"] = Vblade(nas, shelf, slot, "nas0", image)
            yield Lab(nas, client, blades)
        finally:
            for blade in blades.values():
                blade.proc.send_signal(signal.SIGCONT)
                blade.stop()
