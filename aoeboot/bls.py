"""Boot Loader Spec Type #1 entries ($BOOT/loader/entries/*.conf): parse, edit options, render.

Every line is kept as it was (comments, order, unknown keys, spacing), so that changing the
options aoeboot owns changes nothing else in the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from aoeboot.cmdline import Cmdline
from aoeboot.errors import AoebootError
from aoeboot.paths import BLS_ENTRIES

_LINE = re.compile(r"(?P<key>[A-Za-z0-9_-]+)(?P<gap>[ \t]+)(?P<value>.*)")


@dataclass(frozen=True)
class Line:
    text: str  # the raw line, without newline
    key: str | None = None  # None for comments and blank lines
    value: str = ""


@dataclass(frozen=True)
class BootEntry:
    lines: tuple[Line, ...]

    @classmethod
    def parse(cls, text: str, where: str = "boot entry") -> BootEntry:
        lines = []
        for number, raw in enumerate(text.splitlines(), start=1):
            stripped = raw.strip()
            if not stripped or stripped.startswith("#"):
                lines.append(Line(raw))
                continue
            match = _LINE.fullmatch(stripped)
            if not match:
                raise AoebootError(f"{where}:{number}: not a 'key value' line: {stripped!r}")
            lines.append(Line(raw, match.group("key"), match.group("value").strip()))
        return cls(tuple(lines))

    @classmethod
    def read(cls, path: Path) -> BootEntry:
        try:
            return cls.parse(path.read_text(), where=str(path))
        except (OSError, UnicodeDecodeError) as err:
            raise AoebootError(f"cannot read boot entry {path}: {err}") from None

    def render(self) -> str:
        return "".join(line.text + "\n" for line in self.lines)

    def get(self, key: str) -> str | None:
        values = self.get_all(key)
        return values[0] if values else None

    def get_all(self, key: str) -> list[str]:
        return [line.value for line in self.lines if line.key == key]

    def main_initrd(self) -> str | None:
        """The initramfs this entry boots, as it names it: the last image of its initrd lines
        (microcode images come first; grub's BLS entries may add `$tuned_initrd`, a variable);
        None without one."""
        names = [
            word
            for value in self.get_all("initrd")
            for word in value.split()
            if not word.startswith("$")
        ]
        return names[-1] if names else None

    @property
    def options(self) -> Cmdline:
        """All `options` lines joined, as the boot loader does."""
        return Cmdline.parse(" ".join(self.get_all("options")))

    def with_options(self, options: Cmdline) -> BootEntry:
        """Replace the options (the first `options` line takes them all; others are dropped)."""
        new: list[Line] = []
        done = False
        for line in self.lines:
            if line.key != "options":
                new.append(line)
            elif not done:
                gap = _LINE.fullmatch(line.text.strip())
                spacing = gap.group("gap") if gap else " "
                indent = line.text[: len(line.text) - len(line.text.lstrip())]
                new.append(
                    replace(
                        line,
                        text=f"{indent}options{spacing}{options.render()}",
                        value=options.render(),
                    )
                )
                done = True
        if not done:
            new.append(Line(f"options {options.render()}", "options", options.render()))
        return BootEntry(tuple(new))


def entries_for(boot_root: Path, kver: str) -> list[Path]:
    """The entries of kernel `kver` under `boot_root`: TOKEN-KVER.conf and TOKEN-KVER+TRIES.conf,
    and any other entry whose `version` is kver (Fedora's grub entries)."""
    directory = boot_root / BLS_ENTRIES
    if not directory.is_dir():
        return []
    found = []
    for path in sorted(directory.glob("*.conf")):
        stem = path.stem.split("+")[0]
        if stem.endswith("-" + kver):
            found.append(path)
            continue
        try:
            if BootEntry.read(path).get("version") == kver:
                found.append(path)
        except AoebootError:
            continue
    return found


def all_entries(boot_root: Path) -> list[Path]:
    directory = boot_root / BLS_ENTRIES
    return sorted(directory.glob("*.conf")) if directory.is_dir() else []
