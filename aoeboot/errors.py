"""The one error type for what the user (or the world) got wrong, and the exit codes."""

from __future__ import annotations

from typing import Optional

# Exit codes that mean something, shared by every command.
EXIT_OK = 0
EXIT_NOTHING = 1  # the command worked but found nothing (no targets, next boot would fail)
EXIT_USAGE = 2  # bad input, or the command cannot work here (not root, no such interface)


class AoebootError(Exception):
    """A one-line, user-facing error. The CLI prints it and exits with `exit_code`."""

    def __init__(self, message: str, hint: Optional[str] = None, exit_code: int = EXIT_USAGE):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"
