"""`aoeboot install-entry`: run from the installer's shell against its sysroot."""

from __future__ import annotations

import json
from pathlib import Path

import click

from aoeboot.cli import root_option


@click.command("install-entry")
@click.option(
    "--target",
    "target_text",
    metavar="eX.Y[pN]",
    help="The AoE partition that holds root (the file system, or its LVM, LUKS or "
    "md stack). Default: the AoE disk under the mount at --root.",
)
@click.option(
    "--iface",
    "interfaces",
    multiple=True,
    metavar="IF|MAC",
    help="Interface (name or MAC) AoE may use at boot; repeatable. Default: all.",
)
@click.option(
    "--server",
    "servers",
    multiple=True,
    metavar="MAC",
    help="The NAS's MAC that serves the target; repeatable. Default: the servers "
    "the aoe driver uses for it.",
)
@root_option("The system to act on (the installer's sysroot: /mnt/sysimage).")
@click.option("--json", "as_json", is_flag=True, help="Print what changed as JSON.")
def install_entry(
    target_text: str | None,
    interfaces: tuple[str, ...],
    servers: tuple[str, ...],
    root: Path,
    as_json: bool,
) -> None:
    """Set an installed system up to boot from its AoE disk.

    Run from the installer's shell after installing onto an AoE disk. Writes
    /etc/aoeboot/aoeboot.conf, /etc/kernel/cmdline (root's mount options from the system's
    fstab), GRUB_CMDLINE_LINUX where /etc/default/grub exists, a dracut drop-in, and, where
    NetworkManager is installed, a NetworkManager drop-in that keeps the AoE NICs (matched by
    MAC) managed with their MAC, Wake-on-LAN on where they have it, and their link up at
    poweroff; builds an initramfs with AoE support for every installed kernel (and the rescue
    image) that lacks one, and puts the AoE options into every boot entry. Running it again
    changes nothing.

    Records which server MACs serve the target (--server, else what the aoe driver sees):
    `status` and the initramfs's AoE report name any other server that answers for it.
    """
    from aoeboot import mac
    from aoeboot.config import parse_interface
    from aoeboot.install_entry import install_entry as run_install_entry
    from aoeboot.target import Target

    target = Target.parse(target_text) if target_text else None
    names = [parse_interface(name) for name in interfaces]
    recorded = tuple(dict.fromkeys(mac.one_nic(server) for server in servers))
    changes = run_install_entry(root, target, names, recorded)
    if as_json:
        click.echo(json.dumps({"changed": bool(changes), "changes": changes}, indent=2))
    elif changes:
        for change in changes:
            click.echo(change)
    else:
        click.echo("nothing to change: already set up to boot from AoE")
