"""The command line: parses and prints; the work lives in the modules below it.

Commands are imported only when invoked, so `aoeboot --help` and shell completion start fast.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Callable, TypeVar

import click

from aoeboot import __version__
from aoeboot.errors import EXIT_INTERRUPTED, AoebootError

# command name -> "module:attribute" of its click.Command
COMMANDS: dict[str, str] = {
    "discover": "aoeboot.cli.discover:discover",
    "cmdline": "aoeboot.cli.cmdline:cmdline",
    "install-entry": "aoeboot.cli.install_entry:install_entry",
    "kernel-install": "aoeboot.cli.kernel_install:kernel_install",
    "publish": "aoeboot.cli.publish:publish",
    "nas-config": "aoeboot.cli.nas_config:nas_config",
    "status": "aoeboot.cli.status:status",
    "watch": "aoeboot.cli.watch:watch",
}
ALIASES = {"doctor": "status"}
F = TypeVar("F", bound=Callable[..., Any])

SHORT_HELP = {
    "discover": "Find the AoE targets the network offers.",
    "cmdline": "Print the kernel options this host needs to boot from AoE.",
    "install-entry": "Set an installed system up to boot from its AoE disk.",
    "kernel-install": "Entry point of the kernel-install plugin (add/remove).",
    "publish": "Publish kernels and the iPXE script to the NAS.",
    "nas-config": "Print the NAS's DHCP fragment or vblade export for this box.",
    "status": "Check the whole boot chain (alias: doctor).",
    "watch": "Keep the root disk's NICs up; tell of a silent NAS.",
}


def root_option(help: str, hidden: bool = False) -> Callable[[F], F]:
    """--root, made absolute and checked (fsutil.system_root) before the command runs."""

    def absolute(ctx: click.Context, param: click.Parameter, value: Path) -> Path:
        from aoeboot.fsutil import system_root

        return system_root(value)

    return click.option(
        "--root",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("/"),
        show_default=True,
        hidden=hidden,
        help=help,
        callback=absolute,
    )


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        name = ALIASES.get(name, name)
        if name not in COMMANDS:
            return None
        module_name, attribute = COMMANDS[name].split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name == module_name:
                return None
            raise
        command: click.Command = getattr(module, attribute)
        return command

    def invoke(self, ctx: click.Context) -> object:
        # click turns Ctrl-C into Abort, exit 1, which here means "found nothing".
        try:
            return super().invoke(ctx)
        except AoebootError as err:  # one line (with --debug, its traceback), and its code
            err.show()
            raise click.exceptions.Exit(err.exit_code) from None
        except KeyboardInterrupt:
            click.echo("aoeboot: interrupted", err=True)
            raise click.exceptions.Exit(EXIT_INTERRUPTED) from None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help without importing every command module.
        rows = [(name, SHORT_HELP.get(name, "")) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="aoeboot")
@click.option("-v", "--verbose", count=True, help="More messages (repeat for more).")
@click.option("--debug", is_flag=True, help="Everything, and tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, verbose: int, debug: bool) -> None:
    """Boot a diskless Linux box from a root disk on ATA over Ethernet, and keep it booting.

    Exit codes: 0 success, 1 nothing found or the next boot would fail, 2 bad input or
    cannot work here (the reason is printed on one line).
    """
    from aoeboot import log

    ctx.obj = {"debug": debug, "verbose": verbose}
    log.setup(verbose, debug)


def main() -> None:
    cli.main(prog_name="aoeboot")
