"""`aoeboot watch`: keep the root disk's NICs up; tell of a silent NAS."""

from __future__ import annotations

from pathlib import Path

import click

from aoeboot.cli import root_option


@click.command()
@root_option("Where the config, the state file and /dev/kmsg are (tests).", hidden=True)
@click.option(
    "--interval",
    type=click.FloatRange(0.2, 3600),
    default=10.0,
    show_default=True,
    help="Seconds between two questions to the NAS.",
)
@click.option(
    "--silent-after",
    type=click.FloatRange(1, 86400),
    default=30.0,
    show_default=True,
    help="Seconds without an answer before the NAS is silent.",
)
def watch(root: Path, interval: float, silent_after: float) -> None:
    """Watch the root disk while the box runs (aoeboot-watch.service runs this).

    Keeps the disk's NICs up (a NIC taken down, by NetworkManager going to sleep or by hand,
    silences the disk, and the box hangs), and asks the NAS every --interval seconds: when no
    server of the disk answers for --silent-after seconds it says so on the console and in the
    kernel log (and so the journal), and again when the NAS answers. The state is in
    /run/aoeboot/watch.json, which `aoeboot status` reads. It locks itself in memory: it must
    not need the disk it watches. Runs until stopped.
    """
    import math

    from aoeboot import config as configuration
    from aoeboot import watch as watching
    from aoeboot.errors import AoebootError

    if not (math.isfinite(interval) and math.isfinite(silent_after)):
        raise AoebootError("--interval and --silent-after must be numbers of seconds")
    what = watching.watch_of(configuration.load(root), root, silent_after)
    watching.run(what, interval)
