"""Where messages go: the journal when nobody is watching (kernel-install, timers), else stderr."""

from __future__ import annotations

import logging
import os
import sys

IDENTIFIER = "aoeboot"


def _journal_handler() -> logging.Handler | None:
    try:
        from systemd.journal import JournalHandler  # optional: python3-systemd
    except ImportError:
        return None
    if not os.path.exists("/run/systemd/journal/socket"):
        return None
    handler: logging.Handler = JournalHandler(SYSLOG_IDENTIFIER=IDENTIFIER)
    return handler


def setup(verbosity: int = 0, debug: bool = False, to_journal: bool | None = None) -> str:
    """Configure the root logger once; return where messages go ('journal' or 'stderr').

    verbosity 0 shows warnings, 1 info, 2 and --debug everything. With no terminal on stderr
    (kernel-install, systemd) messages also go to the journal when it is there.
    """
    level = (
        logging.DEBUG if debug or verbosity >= 2 else logging.INFO if verbosity else logging.WARNING
    )
    root = logging.getLogger()
    root.handlers.clear()
    root.setLevel(level)
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setFormatter(logging.Formatter(f"{IDENTIFIER}: %(message)s"))
    root.addHandler(stderr)
    if to_journal is None:
        to_journal = not sys.stderr.isatty()
    journal = _journal_handler() if to_journal else None
    if journal is not None:
        journal.setLevel(min(level, logging.INFO))  # the journal keeps info for later reading
        root.setLevel(min(level, logging.INFO))
        stderr.setLevel(level)
        root.addHandler(journal)
        return "journal"
    return "stderr"


def error(message: str, exc: BaseException | None = None) -> None:
    """The one line a failed command prints: through the configured handlers (so the journal
    has it too), or plainly on stderr when the failure came before logging was set up.
    `exc` adds that exception's traceback (for --debug)."""
    root = logging.getLogger()
    if root.handlers:
        root.error(message, exc_info=exc)
    else:
        print(f"{IDENTIFIER}: {message}", file=sys.stderr)
