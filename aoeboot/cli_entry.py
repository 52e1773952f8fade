"""`aoeboot cmdline`, `aoeboot install-entry` and `aoeboot kernel-install` (the plugin's entry
point)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from aoeboot.cli import root_option
from aoeboot.errors import EXIT_NOTHING

ROOT_OPTION = root_option("The system to act on (the installer's target: /mnt/sysimage).")


@click.command()
@ROOT_OPTION
@click.option("--initramfs", "for_initramfs", is_flag=True,
              help="What the initramfs carries in /etc/cmdline.d: the same, and rd.aoe=1.")
def cmdline(root: Path, for_initramfs: bool) -> None:
    """Print the kernel options this host needs to boot from AoE.

    root=, the rootfstype=/rootflags= of the system's fstab, and rd.aoe.*. The dracut
    module's install() bakes `--initramfs` into every image it builds, so the image finds its
    root even after a boot loader tool rewrote the options (its cmdline() serves only
    `dracut --print-cmdline` and hostonly_cmdline). Exit 1, printing nothing, when the host
    neither is configured for AoE nor runs from an AoE disk.
    """
    from aoeboot import config
    from aoeboot.hostopts import host_options, initramfs_options

    pick = initramfs_options if for_initramfs else host_options
    options = pick(config.load(root), root)
    if options is None:
        sys.exit(EXIT_NOTHING)
    click.echo(" ".join(options))


@click.command("install-entry")
@click.option("--target", "target_text", metavar="eX.Y[pN]",
              help="The AoE root partition. Default: the AoE device mounted at --root.")
@click.option("--iface", "interfaces", multiple=True, metavar="IF|MAC",
              help="Interface (name or MAC) AoE may use at boot; repeatable. Default: all.")
@click.option("--server", "servers", multiple=True, metavar="MAC",
              help="The NAS's MAC that serves the target; repeatable. Default: the servers "
                   "the aoe driver uses for it.")
@ROOT_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print what changed as JSON.")
def install_entry(target_text: str | None, interfaces: tuple[str, ...],
                  servers: tuple[str, ...], root: Path, as_json: bool) -> None:
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


@click.command("kernel-install", context_settings={"ignore_unknown_options": True})
@click.argument("command")
@click.argument("kver")
@click.argument("entry_dir", type=click.Path(path_type=Path))
@click.argument("kernel_image", required=False, type=click.Path(path_type=Path))
@click.argument("initrds", nargs=-1, type=click.Path(path_type=Path))
@click.pass_context
def kernel_install(ctx: click.Context, command: str, kver: str, entry_dir: Path,
                   kernel_image: Path | None, initrds: tuple[Path, ...]) -> None:
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
        for line in done or ["aoeboot: this host does not boot from AoE (no [boot] target in "
                             "/etc/aoeboot/aoeboot.conf, / not on an AoE disk): nothing to do"]:
            click.echo(line)
