"""`aoeboot status` (alias `doctor`): will the box come back after a reboot?"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from aoeboot.cli import root_option
from aoeboot.errors import EXIT_NOTHING


@click.command()
@root_option("The system to check (the installer's target: /mnt/sysimage).")
@click.option("--json", "as_json", is_flag=True,
              help='Print {"next_boot_ok": BOOL, "checks": [{name, level, message, hint}]}.')
def status(root: Path, as_json: bool) -> None:
    """Check the whole boot chain and say whether the next boot would reach root on AoE.

    In boot order: the config's target; the aoe driver in the newest and the running kernel;
    the target visible and up; / mounted from it; /etc/kernel/cmdline and every Boot Loader Spec
    entry pointing at it; every installed kernel's initramfs holding the aoe driver and our
    dracut module; the dracut drop-in and kernel-install plugin that keep the next kernel
    update bootable; where NetworkManager runs, its drop-in covering every NIC of the root disk,
    whether suspend would take such a NIC down (no Wake-on-LAN), and what NetworkManager can
    still do to them that no configuration prevents; the last publish to the NAS and the files
    its iPXE script boots.

    Each check prints OK, WARN (a fallback or the next update would break) or FAIL (the next
    boot would), with a hint. Exit 0 when nothing FAILs, 1 when the next boot would fail.
    """
    from aoeboot import status as checking

    def progress(step: str) -> None:
        if sys.stderr.isatty() and not as_json:
            click.echo(f"aoeboot: checking {step}...", err=True)

    checks = checking.check(root, progress)
    if as_json:
        click.echo(checking.to_json(checks))
    else:
        width = max(len(c.name) for c in checks)
        for item in checks:
            click.echo(f"{item.level:<4}  {item.name:<{width}}  {item.message}")
            if item.hint and item.level != checking.OK:
                click.echo(f"{'':<4}  {'':<{width}}  hint: {item.hint}")
        fails = sum(c.level == checking.FAIL for c in checks)
        click.echo("next boot: OK" if not fails else
                   f"next boot: would FAIL ({fails} problem{'s' if fails > 1 else ''} above)")
    if not checking.next_boot_ok(checks):
        sys.exit(EXIT_NOTHING)


@click.command()
@root_option("Where the config, the state file and /dev/kmsg are (tests).", hidden=True)
@click.option("--interval", type=click.FloatRange(0.2, 3600), default=10.0, show_default=True,
              help="Seconds between two questions to the NAS.")
@click.option("--silent-after", type=click.FloatRange(1, 86400), default=30.0,
              show_default=True, help="Seconds without an answer before the NAS is silent.")
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
