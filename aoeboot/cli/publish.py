"""`aoeboot publish`: complete pending publishes to the NAS."""

from __future__ import annotations

import json
from pathlib import Path

import click

from aoeboot.cli import root_option


@click.command()
@root_option("The system whose publishing state to complete.")
@click.option("--json", "as_json", is_flag=True, help="Print the publish state as JSON.")
def publish(root: Path, as_json: bool) -> None:
    """Complete pending publishes to the NAS (also run by aoeboot-publish.timer).

    kernel-install publishes every kernel it installs; when the NAS was unreachable the publish
    is recorded as pending in /var/lib/aoeboot/publish.json and completed here (a damaged
    publish.json is set aside as publish.json.damaged and written anew from what the NAS boots).
    Exit 0 when nothing is left pending, 2 when the NAS still fails.
    """
    from aoeboot import config as configuration
    from aoeboot import publish as publishing

    config = configuration.load(root)
    state = publishing.complete_pending(root, config)
    if as_json:
        click.echo(json.dumps(state, indent=2))
    else:
        kernels = ", ".join(state.get("kernels", [])) or "none"
        click.echo(
            f"published ({state.get('destination', 'no destination')}): {kernels}; nothing pending"
        )
