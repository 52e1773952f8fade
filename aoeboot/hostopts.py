"""The kernel options this host needs to boot from AoE: from the config, else from where / is."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Tuple

from aoeboot import rootdev
from aoeboot.cmdline import aoe_options
from aoeboot.config import Config


def host_options(config: Config, root: Path = Path("/")) -> Optional[Tuple[str, ...]]:
    """root=, rd.aoe.* for this host; None when it neither is configured for nor runs from AoE."""
    target = config.boot.target or rootdev.aoe_root(root)
    if target is None:
        return None
    boot = config.boot
    return aoe_options(target, boot.interfaces, boot.timeout, boot.deadsecs)
