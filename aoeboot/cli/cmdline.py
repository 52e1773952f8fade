"""`aoeboot cmdline`: the kernel options this host needs to boot from AoE."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from aoeboot.cli import root_option
from aoeboot.errors import EXIT_NOTHING


@click.command()
@root_option("The system to act on (the installer's sysroot: /mnt/sysimage).")
@click.option(
    "--initramfs",
    "for_initramfs",
    is_flag=True,
    help="What the initramfs carries in /etc/cmdline.d: the same, and rd.aoe=1.",
)
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
