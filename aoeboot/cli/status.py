"""`aoeboot status` (alias `doctor`): will the box come back after a reboot?"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from aoeboot.cli import root_option
from aoeboot.errors import EXIT_NOTHING


@click.command()
@root_option("The system to check (the installer's sysroot: /mnt/sysimage).")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='Print {"next_boot_ok": BOOL, "checks": [{name, level, message, hint}]}.',
)
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
        click.echo(
            "next boot: OK"
            if not fails
            else f"next boot: would FAIL ({fails} problem{'s' if fails > 1 else ''} above)"
        )
    if not checking.next_boot_ok(checks):
        sys.exit(EXIT_NOTHING)
