"""/etc/default/grub's GRUB_CMDLINE_LINUX, kept carrying the options aoeboot owns.

On Fedora, grub2-mkconfig rewrites /etc/kernel/cmdline and every boot entry's options to
`root=<probed> ro $GRUB_CMDLINE_LINUX $GRUB_CMDLINE_LINUX_DEFAULT` (grub2's 10_linux,
update_bls_cmdline). Our options placed in GRUB_CMDLINE_LINUX come after the probed root= and
so win (the kernel, dracut and systemd take the last root=). Only that one assignment is
touched; the file is a shell fragment, so a value we cannot read for certain is an error.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from aoeboot import paths
from aoeboot.cmdline import Cmdline
from aoeboot.errors import AoebootError
from aoeboot.fsutil import atomic_write, read_text, under

_ASSIGNMENT = re.compile(r"(?P<lead>\s*(?:export\s+)?GRUB_CMDLINE_LINUX=)(?P<value>.*)")
_PLAIN = re.compile(r"[^\s\"'`$\\;&|<>()]*")


def _value(text: str, where: str) -> str:
    """The shell value of `"..."`, `'...'` or a bare word; anything cleverer is an error."""
    text = text.strip()
    if text[:1] in ("'", '"'):
        quote = text[0]
        end = text.find(quote, 1)
        if end < 0:
            raise AoebootError(f"{where}: unterminated quote in GRUB_CMDLINE_LINUX")
        inner, rest = text[1:end], text[end + 1 :].strip()
        if rest and not rest.startswith("#"):
            raise AoebootError(f"{where}: cannot read GRUB_CMDLINE_LINUX={text}")
        if quote == '"' and re.search(r"[$`\\]", inner):
            raise AoebootError(
                f"{where}: GRUB_CMDLINE_LINUX uses shell expansion; "
                "set the AoE options there by hand"
            )
        return inner
    word = text.split("#", 1)[0].strip()
    if not _PLAIN.fullmatch(word):
        raise AoebootError(f"{where}: cannot read GRUB_CMDLINE_LINUX={text}")
    return word


def current(root: Path) -> Cmdline | None:
    """GRUB_CMDLINE_LINUX of root's /etc/default/grub; None without the file or the line."""
    path = under(root, paths.DEFAULT_GRUB)
    if not path.exists():
        return None
    found = None
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        match = _ASSIGNMENT.fullmatch(line)
        if match:
            found = _value(match.group("value"), f"{path}:{number}")
    return Cmdline.parse(found, where=str(path)) if found is not None else None


def ensure(root: Path, owned: Sequence[str]) -> bool:
    """Give GRUB_CMDLINE_LINUX exactly our `owned` options, keeping the rest; True if changed.
    Nothing to do (False) where the system has no /etc/default/grub."""
    path = under(root, paths.DEFAULT_GRUB)
    if not path.exists():
        return False
    lines = read_text(path).splitlines()
    last = None
    for index, line in enumerate(lines):
        if _ASSIGNMENT.fullmatch(line):
            last = index
    old = current(root) or Cmdline()
    new = old.with_owned(owned)
    if last is not None and new.options == old.options:
        return False
    assignment = f'GRUB_CMDLINE_LINUX="{new.render()}"'
    if last is None:
        lines.append(assignment)
    else:
        lead = _ASSIGNMENT.fullmatch(lines[last]).group("lead")  # type: ignore[union-attr]
        lines[last] = lead.replace("GRUB_CMDLINE_LINUX=", "") + assignment
    atomic_write(path, "\n".join(lines) + "\n")
    return True
