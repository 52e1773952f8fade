"""Fixtures shared by tests that need a NAS: namespaces, a veth link, vblade targets."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from aoelab.netns import Namespace, veth_pair
from aoelab.relay import Relay
from aoelab.vblade import Vblade, sparse_image
from tests.helpers import require_programs, require_root

SIZES = {(11, 0): 64 << 20, (11, 1): 3 << 30}


@dataclass
class Lab:
    nas: Namespace
    client: Namespace
    blades: dict[str, Vblade]

    def stop(self, name: str, sig: int = signal.SIGKILL) -> None:
        self.blades[name].proc.send_signal(sig)


@contextlib.contextmanager
def serve(
    tmp_path: Path, sizes: Mapping[tuple[int, int], int], order: str | None = None
) -> Iterator[Lab]:
    """NAS namespace (nas0) <-veth-> client namespace (eth0), vblade serving a sparse image of
    each size as eSHELF.SLOT. With `order`, a relay in the NAS namespace stands between nas0 and
    the client and lets those replies through only in that order (see aoelab.relay)."""
    require_root()
    require_programs("ip", "vblade")
    with Namespace() as nas, Namespace() as client, contextlib.ExitStack() as stack:
        if order is None:
            veth_pair(nas, "nas0", client, "eth0")
        else:
            veth_pair(nas, "nas0", nas, "relay0")
            veth_pair(nas, "relay1", client, "eth0")
            stack.enter_context(Relay(nas, "relay0", "relay1", order))
        blades = {}
        try:
            for (shelf, slot), size in sizes.items():
                image = sparse_image(tmp_path / f"e{shelf}.{slot}.img", size)
                blades[f"e{shelf}.{slot}"] = Vblade(nas, shelf, slot, "nas0", image)
            yield Lab(nas, client, blades)
        finally:
            for blade in blades.values():
                blade.proc.send_signal(signal.SIGCONT)
                blade.stop()
