"""`aoeboot kernel-install`: the entry point of the kernel-install plugin."""

from __future__ import annotations

import os
from pathlib import Path

import click


@click.command("kernel-install", context_settings={"ignore_unknown_options": True})
@click.argument("command")
@click.argument("kver")
@click.argument("entry_dir", type=click.Path(path_type=Path))
@click.argument("kernel_image", required=False, type=click.Path(path_type=Path))
@click.argument("initrds", nargs=-1, type=click.Path(path_type=Path))
@click.pass_context
def kernel_install(
    ctx: click.Context,
    command: str,
    kver: str,
    entry_dir: Path,
    kernel_image: Path | None,
    initrds: tuple[Path, ...],
) -> None:
    """Entry point of the kernel-install plugin 60-aoeboot.install.

    Arguments as kernel-install passes them: add KVER ENTRY-DIR KERNEL-IMAGE [INITRD...] or
    remove KVER ENTRY-DIR; settings from the KERNEL_INSTALL_* environment. Silent unless
    KERNEL_INSTALL_VERBOSE=1; exit 0 when this host does not boot from AoE. AOEBOOT_ROOT names
    another system root (image builds, tests); aoeboot.conf is read from KERNEL_INSTALL_CONF_ROOT
    when that is set.
    """
    from aoeboot import kernel_install as plugin
    from aoeboot import log

    env = plugin.Environment.from_env(os.environ)
    root = Path(os.environ.get("AOEBOOT_ROOT") or "/")
    if env.verbose and not ctx.obj.get("verbose"):
        log.setup(1, ctx.obj.get("debug", False))
    if command == "add":
        if kernel_image is None:
            raise click.UsageError("add needs KERNEL-IMAGE")
        done = plugin.add(kver, entry_dir, kernel_image, initrds, env, root)
    elif command == "remove":
        done = plugin.remove(kver, entry_dir, env, root)
    else:
        return  # kernel-install may grow commands; they are not ours to handle
    if env.verbose:
        for line in done or [
            "aoeboot: this host does not boot from AoE (no [boot] target in "
            "/etc/aoeboot/aoeboot.conf, / not on an AoE disk): nothing to do"
        ]:
            click.echo(line)
