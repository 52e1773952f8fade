"""The kernel command line: parse, edit the options aoeboot owns, render."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from aoeboot.errors import AoebootError
from aoeboot.target import Target

# Options aoeboot writes and may replace; every other option belongs to the user. rootflags=
# and rootfstype= come from the installed system's fstab (Fedora's root: btrfs subvolume root).
OWNED_KEYS = (
    "root",
    "rootfstype",
    "rootflags",
    "rd.aoe",
    "rd.aoe.iface",
    "rd.aoe.timeout",
    "rd.aoe.deadsecs",
)

# AoE is wanted although root= names no AoE device (a stack on it; a UUID= written by a tool
# that knows nothing of AoE): parse-aoe.sh brings AoE up, and reports if nothing came.
AOE_WANTED = "rd.aoe=1"

# x86 and arm64 kernels: a longer command line is cut to COMMAND_LINE_SIZE - 1 bytes.
COMMAND_LINE_SIZE = 2048


@dataclass(frozen=True)
class Cmdline:
    options: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str, where: str = "kernel command line") -> Cmdline:
        """Split like the kernel does: on blanks, except inside double quotes."""
        options, current, quoted, started = [], [], False, False
        for char in text:
            if char == '"':
                quoted = not quoted
                started = True
                current.append(char)
            elif char.isspace() and not quoted:
                if started:
                    options.append("".join(current))
                current, started = [], False
            elif char in "\0" or (not char.isprintable() and not char.isspace()):
                raise AoebootError(f"{where}: control character in command line")
            else:
                current.append(char)
                started = True
        if quoted:
            raise AoebootError(f"{where}: unterminated quote in command line")
        if started:
            options.append("".join(current))
        return cls(tuple(options))

    def render(self) -> str:
        return " ".join(self.options)

    def get(self, key: str) -> str | None:
        """The value of the last `key=value` (the kernel and dracut take the last one)."""
        value = None
        for option in self.options:
            name, sep, rest = option.partition("=")
            if name == key:
                value = rest.strip('"') if sep else ""
        return value

    def has(self, option: str) -> bool:
        """Is `option` there? rd.luks.uuid= is the same with or without its luks- prefix."""
        return _normal(option) in {_normal(o) for o in self.options}

    def without(self, keys: Iterable[str]) -> Cmdline:
        drop = set(keys)
        return Cmdline(tuple(o for o in self.options if o.partition("=")[0] not in drop))

    def with_owned(self, owned: Sequence[str]) -> Cmdline:
        """Replace every option aoeboot owns with those of `owned`, keeping the rest in place
        and order; add the others of `owned` (rd.lvm.lv=...) where missing, never removing one
        (the user may name more, e.g. a swap LV)."""
        kept = self.without(OWNED_KEYS)
        return Cmdline(
            kept.options + tuple(o for o in owned if _key(o) in OWNED_KEYS or not kept.has(o))
        )

    def __str__(self) -> str:
        return self.render()


def _key(option: str) -> str:
    return option.partition("=")[0]


def _normal(option: str) -> str:
    key, sep, value = option.partition("=")
    return f"{key}={value.removeprefix('luks-')}" if key == "rd.luks.uuid" else option


def aoe_options(
    target: Target,
    interfaces: Sequence[str] = (),
    timeout: int | None = None,
    deadsecs: int | None = None,
    root_mount: Sequence[str] = (),
    stacked: tuple[str, Sequence[str]] | None = None,
) -> tuple[str, ...]:
    """The options that make our dracut module boot root from `target`; `root_mount` are the
    rootfstype=/rootflags= the root file system needs. `stacked`: root is under LVM, LUKS or
    md on the target: root= is this device (fstab's) and these options assemble it."""
    if stacked is None:
        options = [f"root={target.device}", *root_mount]
    else:
        device, assembly = stacked
        options = [f"root={device}", *root_mount, *assembly, AOE_WANTED]
    if interfaces:
        options.append("rd.aoe.iface=" + ",".join(interfaces))
    if timeout is not None:
        options.append(f"rd.aoe.timeout={timeout}")
    if deadsecs is not None:
        options.append(f"rd.aoe.deadsecs={deadsecs}")
    return tuple(options)
