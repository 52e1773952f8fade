"""The one error type for what the user (or the world) got wrong, and the exit codes."""

from __future__ import annotations

import logging

# Exit codes that mean something, shared by every command.
EXIT_NOTHING = 1  # the command worked but found nothing (no targets, next boot would fail)
EXIT_USAGE = 2  # bad input, or the command cannot work here (not root, no such interface)
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT


class AoebootError(Exception):
    """A one-line, user-facing error; the CLI's edge (cli.LazyGroup) shows it and exits with
    exit_code. A plain exception: the modules that raise it need no click."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"

    def show(self) -> None:
        # Through logging, so a run under kernel-install leaves the line in the journal too;
        # with --debug (log level DEBUG) its traceback comes with it.
        from aoeboot import log

        debug = logging.getLogger().isEnabledFor(logging.DEBUG)
        log.error(str(self), self if debug else None)
