"""/etc/aoeboot/aoeboot.conf: what this host boots from and where its kernels are published.

An INI file with two sections. Every key is known and validated; any error names file and line.

    [boot]
    target = e11.0p1            # the root device on AoE
    interfaces = eth0           # names or MACs, blank-separated; empty: every interface
    timeout = 180               # rd.aoe.timeout, seconds to wait for the root disk
    deadsecs = 0                # rd.aoe.deadsecs, aoe_deadsecs; empty: 0 = never give up
    servers = 52:54:00:aa:00:01 # the NAS's MACs serving the target (install-entry records
                                # them; status and the AoE report name any other server)

    [publish]
    destination = /srv/tftp/aoeboot   # a directory, or ssh://[user@]host[:port]/path
    host = auto                 # per-host directory: auto (the boot MAC, as nas-config) or a name
    url =                       # base URL iPXE fetches from; empty: relative to the script
    keep = 2                    # kernels kept on the NAS (the newest and its fallbacks)
    ssh_identity =              # private key for ssh destinations
    ssh_known_hosts =           # known_hosts file for ssh destinations (host keys always checked)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Callable

from aoeboot import mac
from aoeboot.errors import AoebootError
from aoeboot.fsutil import atomic_write, under
from aoeboot.ipxe import check_base_url
from aoeboot.paths import CONFIG as CONFIG_PATH
from aoeboot.target import Target

_IFNAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,14}")
_HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


# User and host start with a letter or digit, so neither can pass for an ssh option.
_SSH_URL = re.compile(
    r"ssh://(?:(?P<user>[A-Za-z0-9_][A-Za-z0-9._-]*)@)?"
    r"(?P<host>[A-Za-z0-9][A-Za-z0-9.-]*)(?::(?P<port>[0-9]{1,5}))?(?P<path>/.*)"
)


@dataclass(frozen=True)
class SshUrl:
    user: str | None
    host: str
    port: int | None
    path: str  # absolute, on the host


def parse_ssh_url(url: str) -> SshUrl:
    """The one grammar of an ssh destination: ssh://[user@]host[:port]/path."""
    match = _SSH_URL.fullmatch(url)
    port = int(match.group("port")) if match and match.group("port") else None
    if not match or port is not None and not 1 <= port <= 65535:
        raise AoebootError(f"{url!r} is not ssh://[user@]host[:port]/path")
    return SshUrl(match.group("user"), match.group("host"), port, match.group("path"))


def parse_interface(text: str) -> str:
    """An interface name or a MAC address (normalised to lower case with colons)."""
    if mac.is_mac(text):
        return mac.one_nic(text)
    if _IFNAME.fullmatch(text) and text not in (".", ".."):
        return text
    raise AoebootError(f"invalid interface {text!r}", hint="an interface name or a MAC address")


def interface_name(text: str) -> str:
    """An interface name (what vblade and aoe_iflist take), never a MAC address."""
    if mac.is_mac(text) or not _IFNAME.fullmatch(text) or text in (".", ".."):
        raise AoebootError(f"invalid interface name {text!r}", hint="a name such as eth0 or enp1s0")
    return text


@dataclass(frozen=True)
class BootConfig:
    target: Target | None = None
    interfaces: tuple[str, ...] = ()
    timeout: int | None = None
    deadsecs: int | None = None
    servers: tuple[str, ...] = ()


@dataclass(frozen=True)
class PublishConfig:
    destination: str | None = None
    host: str = "auto"
    url: str = ""
    keep: int = 2
    ssh_identity: Path | None = None
    ssh_known_hosts: Path | None = None


@dataclass(frozen=True)
class Config:
    boot: BootConfig = field(default_factory=BootConfig)
    publish: PublishConfig = field(default_factory=PublishConfig)


def _int_in(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        # More digits than `high` has is out of range, and may be too long for int() (4300).
        digits = text.lstrip("0") or "0"
        if (
            not re.fullmatch(r"[0-9]+", text)
            or len(digits) > len(str(high))
            or not low <= int(digits) <= high
        ):
            shown = text if len(text) <= 20 else f"{text[:12]}... ({len(text)} characters)"
            raise AoebootError(f"{shown!r} is not a whole number from {low} to {high}")
        return int(digits)

    return parse


def _destination(text: str) -> str:
    if text.startswith("ssh://"):
        parse_ssh_url(text)  # the one grammar, which the transport uses too
        return text
    if not text.startswith("/"):
        raise AoebootError(f"{text!r} is neither an absolute directory nor ssh://host/path")
    return text


def _host(text: str) -> str:
    if text != "auto" and not _HOST.fullmatch(text):
        raise AoebootError(f"{text!r} is not 'auto' nor a plain host name")
    return text


def _absolute_path(text: str) -> Path:
    if not text.startswith("/"):
        raise AoebootError(f"{text!r} is not an absolute path")
    return Path(text)


def _interfaces(text: str) -> tuple[str, ...]:
    return tuple(parse_interface(word) for word in text.replace(",", " ").split())


def _macs(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(mac.one_nic(word) for word in text.replace(",", " ").split()))


# section -> key -> parser of a non-empty value. An empty value means "the default".
_SCHEMA: dict[str, dict[str, Callable[[str], object]]] = {
    "boot": {
        "target": Target.parse,
        "interfaces": _interfaces,
        "timeout": _int_in(1, 86400),
        "deadsecs": _int_in(0, 86400),
        "servers": _macs,
    },
    "publish": {
        "destination": _destination,
        "host": _host,
        "url": check_base_url,
        "keep": _int_in(1, 100),
        "ssh_identity": _absolute_path,
        "ssh_known_hosts": _absolute_path,
    },
}


def parse(text: str, where: str = str(CONFIG_PATH)) -> Config:
    """Parse the config text; every error is `where:LINE: what`."""
    values: dict[str, dict[str, object]] = {name: {} for name in _SCHEMA}
    section: str | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        here = f"{where}:{number}"
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            name = line[1:-1].strip() if line.endswith("]") else None
            if name not in _SCHEMA:
                raise AoebootError(f"{here}: unknown section {line}", hint="[boot] or [publish]")
            section = name
            continue
        key, sep, value = line.partition("=")
        key, value = key.strip(), _strip_comment(value).strip()
        if not sep:
            raise AoebootError(f"{here}: expected 'key = value', got {line!r}")
        if section is None:
            raise AoebootError(f"{here}: {key!r} before any [section]")
        if key not in _SCHEMA[section]:
            known = ", ".join(_SCHEMA[section])
            raise AoebootError(
                f"{here}: unknown key {key!r} in [{section}]", hint=f"known: {known}"
            )
        if key in values[section]:
            raise AoebootError(f"{here}: {key!r} given twice in [{section}]")
        if value:
            try:
                values[section][key] = _SCHEMA[section][key](value)
            except AoebootError as err:
                raise AoebootError(f"{here}: {key}: {err}") from None
        else:
            values[section][key] = None
    boot = {k: v for k, v in values["boot"].items() if v is not None}
    publish = {k: v for k, v in values["publish"].items() if v is not None}
    return Config(BootConfig(**boot), PublishConfig(**publish))  # type: ignore[arg-type]


def _strip_comment(value: str) -> str:
    # Inline comments need a blank before '#', so URLs with fragments stay whole.
    return re.split(r"\s[#;]", value, maxsplit=1)[0]


def render(config: Config) -> str:
    """The config as text that `parse` reads back to the same value."""
    lines = ["# aoeboot configuration; see `man aoeboot` or aoeboot/config.py for every key."]
    for section_name in _SCHEMA:
        section = getattr(config, section_name)
        defaults = type(section)()
        lines.append(f"\n[{section_name}]")
        for item in fields(section):
            value = getattr(section, item.name)
            if value == getattr(defaults, item.name) and item.name not in ("target",):
                continue
            if value is None:
                continue
            text = " ".join(value) if isinstance(value, tuple) else str(value)
            lines.append(f"{item.name} = {text}")
    return "\n".join(lines) + "\n"


def load(root: Path = Path("/"), path: Path | None = None) -> Config:
    """Read the config under `root`; a missing file is the empty config."""
    file = path if path is not None else under(root, CONFIG_PATH)
    try:
        text = file.read_text()
    except FileNotFoundError:
        return Config()
    except (OSError, UnicodeDecodeError) as err:
        raise AoebootError(f"cannot read {file}: {err}") from None
    return parse(text, where=str(file))


def save(config: Config, root: Path = Path("/"), path: Path | None = None) -> None:
    atomic_write(path if path is not None else under(root, CONFIG_PATH), render(config))


__all__ = ["Config", "BootConfig", "PublishConfig", "parse", "render", "load", "save", "replace"]
