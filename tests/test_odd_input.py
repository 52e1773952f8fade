"""Odd input never crashes a command, never half-writes, and never reaches another program
(dnsmasq, iPXE, the kernel) as something it would read otherwise: the issue "The box's own
tools never hurt the NAS, never lie about it, and never fall over on odd input"."""

from __future__ import annotations

import errno
import json
import os
import re
import socket
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from aoeboot import initramfs, lock
from aoeboot.errors import AoebootError
from tests.helpers import aoeboot

KVER = "6.1.0-13-amd64"
HUGE = "1" * 5000  # past Python's 4300-digit limit for int()


def newc(files: dict[str, bytes]) -> bytes:
    """A newc cpio archive holding `files` (what dracut's image is, uncompressed)."""
    out = b""
    for number, (name, data) in enumerate([*files.items(), ("TRAILER!!!", b"")], start=1):
        raw = name.encode() + b"\0"
        fields = [number, 0o100644, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(raw), 0]
        header = b"070701" + b"".join(b"%08x" % f for f in fields) + raw
        out += header + b"\0" * (-len(header) % 4) + data + b"\0" * (-len(data) % 4)
    return out


AOE_FILES = {"usr/lib/modules/x/aoe.ko": b"", "usr/lib/dracut/hooks/parse-aoe.sh": b""}
AOE_IMAGE = newc(AOE_FILES)


def cli(*args: str) -> Result:
    """The CLI in this process, so a test can stand in for dracut or the network."""
    from aoeboot.cli import cli as group

    return CliRunner().invoke(group, list(args))


def bare_root(sysroot: Callable[..., Path]) -> Path:
    """An installed system with one kernel and its boot entry, no initramfs yet."""
    entry = f"title Fedora\nversion {KVER}\nlinux /vmlinuz-{KVER}\noptions ro quiet\n"
    return sysroot(kver=KVER, entries={f"fedora-{KVER}.conf": entry})


def fake_dracut(calls: list[list[str]], bakes: bool = True):
    """Stands in for initramfs.run: writes an image with AoE where dracut was told to, with the
    options aoeboot handed the module to bake (as module-setup.sh's bake_cmdline writes them)
    unless not `bakes`."""

    def run(argv, env=None, **_):
        calls.append([str(a) for a in argv])
        chroot = Path(argv[1]) if argv[0] == "chroot" else Path("/")
        options = (env or {}).get(initramfs.BAKE_ENV)
        image = (
            AOE_IMAGE
            if not (bakes and options)
            else newc({**AOE_FILES, "etc/cmdline.d/50-aoeboot.conf": options.encode() + b"\n"})
        )
        (chroot / str(argv[-1]).lstrip("/")).write_bytes(image)

    return run


def one_line_error(out) -> str:
    lines: list[str] = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1, out.stderr[-3000:]
    assert lines[0].startswith("aoeboot: ") and "Traceback" not in out.stderr
    return lines[0]


def written(root: Path) -> list[str]:
    """The files under `root`, but the (empty) lock file every edit takes first."""
    lock_file = str(lock.LOCK).lstrip("/")
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and str(p.relative_to(root)) != lock_file
    )


# ---- 11: crashes and half-writes ----


def test_a_relative_root_is_made_absolute_before_dracut_runs_in_it(tmp_path, sysroot, monkeypatch):
    """Before: ValueError from relative_to (chroot 'sysimage' vs the absolute temp name), after
    the config, the command line and the drop-in were written."""
    root = bare_root(sysroot)
    calls: list[list[str]] = []
    monkeypatch.setattr(initramfs, "run", fake_dracut(calls))
    monkeypatch.chdir(tmp_path)
    result = cli("install-entry", "--target", "e11.0p1", "--root", "sysimage")
    assert result.exit_code == 0, result.output
    assert calls[0][:2] == ["chroot", str(root)]
    assert f"built boot/initramfs-{KVER}.img (initramfs missing)" in result.stdout
    image = root / "boot" / f"initramfs-{KVER}.img"
    assert initramfs.missing(image) == []
    assert "root=/dev/etherd/e11.0p1" in initramfs.baked_options(image).options


def test_a_modules_dir_that_is_no_kernel_version_is_a_warning_in_the_json(sysroot):
    """Before: `status --json` printed one error line and no JSON; install-entry stopped with
    that error after writing the config."""
    root = sysroot(kver="6.1 old")
    out = aoeboot("install-entry", "--target", "e11.0p1", "--root", str(root))
    assert out.returncode == 0, out.stderr
    assert "/lib/modules holds '6.1 old', which cannot be a kernel version" in out.stderr
    status = aoeboot("status", "--json", "--root", str(root))
    checks = json.loads(status.stdout)["checks"]
    assert {
        "name": "kernel",
        "level": "WARN",
        "message": "/lib/modules holds '6.1 old', which cannot be a kernel version: left out "
        "of every check",
        "hint": "rename or remove it; kernel versions have no blanks",
    } in checks


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["install-entry", "--target", f"e{HUGE}.0"],
            "AoE shelf 11111111... (5000 digits) out of range",
        ),
        (["install-entry", "--target", f"e1.{HUGE}"], "AoE slot 11111111... (5000 digits)"),
        (["install-entry", "--target", f"e1.0p{HUGE}"], "AoE partition 11111111... (5000 digits)"),
        (["nas-config", "--mac", "52:54:00:12:34:56", "--target", f"e{HUGE}.0"], "AoE shelf"),
    ],
)
def test_numbers_past_the_int_limit_are_out_of_range(tmp_path, args, message):
    """Before: ValueError "Exceeds the limit (4300 digits)", a traceback."""
    if args[0] == "install-entry":
        args = [*args, "--root", str(tmp_path)]
    assert message in one_line_error(aoeboot(*args))
    assert list(tmp_path.iterdir()) == []


def test_a_config_number_past_the_int_limit_names_file_and_line(sysroot):
    root = sysroot(config=f"[boot]\ntimeout = {HUGE}\n")
    line = one_line_error(aoeboot("install-entry", "--target", "e1.0p1", "--root", str(root)))
    assert line == (
        f"aoeboot: {root}/etc/aoeboot/aoeboot.conf:2: timeout: '111111111111... "
        "(5000 characters)' is not a whole number from 1 to 86400"
    )


@pytest.mark.parametrize("command", ["install-entry", "status", "cmdline"])
def test_a_root_past_path_max_is_one_line(tmp_path, command):
    """Before: OSError ENAMETOOLONG, a traceback (status: click's three-line usage error)."""
    long_root = "/" + "a/" * 3000
    line = one_line_error(aoeboot(command, "--root", long_root))
    assert line.startswith("aoeboot: root /a/a/a/") and "(6000 bytes) is too long" in line


def test_discover_refuses_a_nan_timeout_before_it_opens_any_socket(monkeypatch):
    """Before: a Query Config broadcast on every interface up, then ValueError from select.
    Here nothing can be sent: opening a socket or asking the driver fails the test."""
    from aoeboot import driver, netif
    from aoeboot.cli import discover as cli_discover

    def no_network(*_args, **_kwargs):
        raise AssertionError("discover reached the network")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(driver, "discover", no_network)
    monkeypatch.setattr(cli_discover, "_driver_usable", lambda: False)
    monkeypatch.setattr(netif, "resolve", lambda names: ["fake0"])
    monkeypatch.setattr(netif, "address", lambda name: "02:00:00:00:00:01")
    result = cli("discover", "--timeout", "nan", "--iface", "fake0")
    assert result.exit_code == 2, (result.output, result.exception)
    assert result.stderr.strip() == "aoeboot: --timeout nan: not a number of seconds"


def test_dracut_failing_on_a_read_only_boot_keeps_its_error_and_leaves_no_temp(
    tmp_path, monkeypatch
):
    """Before: the cleanup's EROFS (an OSError traceback) hid dracut's error, and the empty
    temp made before dracut ran stayed in /boot."""
    boot = tmp_path / "boot"
    boot.mkdir()

    def dracut_fails(argv, **_):
        raise AoebootError("dracut failed (exit 1): cannot write: Read-only file system")

    def read_only(self, *args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))

    monkeypatch.setattr(initramfs, "run", dracut_fails)
    monkeypatch.setattr(Path, "unlink", read_only)
    with pytest.raises(AoebootError, match="dracut failed .* Read-only file system"):
        initramfs.build(KVER, boot / f"initramfs-{KVER}.img")
    assert list(boot.iterdir()) == []


@pytest.mark.parametrize(
    "breakage, message",
    [
        (
            lambda root: (root / "boot/loader/entries/broken.conf").write_text("title x\n!!\n"),
            "broken.conf:2: not a 'key value' line: '!!'",
        ),
        (
            lambda root: (root / "boot/loader/entries/quote.conf").write_text('options root="x\n'),
            "unterminated quote in command line",
        ),
        (
            lambda root: (root / "etc/kernel/cmdline").write_text('ro root="x\n'),
            "etc/kernel/cmdline: unterminated quote in command line",
        ),
    ],
)
def test_every_file_it_edits_is_read_before_it_writes_any(sysroot, breakage, message):
    """Before: the config, /etc/kernel/cmdline and the drop-ins were written, then the broken
    entry or command line stopped it."""
    root = sysroot(cmdline="ro quiet\n")
    (root / "boot/loader/entries").mkdir(parents=True)
    breakage(root)
    before = written(root)
    assert message in one_line_error(
        aoeboot("install-entry", "--target", "e11.0p1", "--root", str(root))
    )
    assert written(root) == before


# ---- 13: input a user gets wrong ----


def _disk_with_partitions(root: Path) -> None:
    """The installer's /sys (Anaconda bind-mounts it): the driver sees e1.0 with two partitions."""
    disk = root / "sys/block/etherd!e1.0"
    for part in ("etherd!e1.0p1", "etherd!e1.0p2"):
        (disk / part).mkdir(parents=True)
    (disk / "state").write_text("up\n")


def _fstab(text: str):
    def write(root: Path) -> None:
        (root / "etc").mkdir(parents=True, exist_ok=True)
        (root / "etc/fstab").write_text(text)

    return write


def _fstab_by_uuid(root: Path) -> None:
    _fstab("UUID=1234 / ext4 defaults 0 0\n")(root)
    (root / "dev/disk/by-uuid").mkdir(parents=True)
    (root / "dev/etherd").mkdir(parents=True)
    (root / "dev/etherd/e1.0p2").write_text("")
    (root / "dev/disk/by-uuid/1234").symlink_to("../../etherd/e1.0p2")


@pytest.mark.parametrize(
    "prepare, target, message",
    [
        (
            _fstab("/dev/etherd/e1.0p2 / ext4 defaults 0 0\n"),
            "e1.0p1",
            "aoeboot: --target is e1.0p1, but /etc/fstab has / on e1.0p2 (--target e1.0p2)",
        ),
        (
            _fstab_by_uuid,
            "e1.0p1",
            "aoeboot: --target is e1.0p1, but /etc/fstab has / on e1.0p2 (--target e1.0p2)",
        ),
        (
            _disk_with_partitions,
            "e1.0",
            "aoeboot: --target is the whole disk e1.0, which has partitions (e1.0p1, e1.0p2): "
            "/ is on one of them (--target e1.0pN)",
        ),
    ],
)
def test_a_target_that_is_not_where_root_is_is_refused(sysroot, prepare, target, message):
    """Before: accepted, and every entry pointed at a partition the next boot cannot mount
    root from."""
    root = sysroot()
    prepare(root)
    before = written(root)
    out = aoeboot("install-entry", "--target", target, "--root", str(root))
    assert one_line_error(out) == message
    assert written(root) == before


@pytest.mark.parametrize(
    "args",
    [
        ["install-entry", "--target", "e1.0p1", "--iface", "ff:ff:ff:ff:ff:ff"],
        ["install-entry", "--target", "e1.0p1", "--iface", "00-00-00-00-00-00"],
        ["install-entry", "--target", "e1.0p1", "--server", "FF:FF:FF:FF:FF:FF"],
        ["install-entry", "--target", "e1.0p1", "--server", "01:00:5e:00:00:01"],
        ["discover", "--iface", "ff:ff:ff:ff:ff:ff"],
    ],
)
def test_broadcast_multicast_and_null_macs_name_no_nic(tmp_path, args):
    """Before: recorded (install-entry) or looked for (discover)."""
    if args[0] == "install-entry":
        args = [*args, "--root", str(tmp_path)]
    assert one_line_error(aoeboot(*args)).endswith("is a multicast or null address, no NIC's MAC")
    assert list(tmp_path.iterdir()) == []


def test_a_broadcast_server_in_the_config_names_file_and_line(sysroot):
    root = sysroot(config="[boot]\nservers = ff:ff:ff:ff:ff:ff\n")
    line = one_line_error(aoeboot("install-entry", "--target", "e1.0p1", "--root", str(root)))
    assert line == (
        f"aoeboot: {root}/etc/aoeboot/aoeboot.conf:2: servers: "
        "'ff:ff:ff:ff:ff:ff' is a multicast or null address, no NIC's MAC"
    )


def test_a_command_line_the_kernel_would_cut_is_refused(sysroot):
    """Before: written; the kernel keeps 2047 bytes, so root= (ours come last) was cut off."""
    root = sysroot(cmdline="ro " + "x" * 2030 + "\n")
    out = aoeboot("install-entry", "--target", "e11.0p1", "--root", str(root))
    assert one_line_error(out) == (
        "aoeboot: /etc/kernel/cmdline: the command line with the AoE options would be 2058 bytes; "
        "the kernel keeps only 2047 and would cut root= off (remove options you do not need)"
    )
    assert written(root) == ["etc/kernel/cmdline"]


def test_run_again_without_target_it_takes_the_one_it_recorded(sysroot):
    """Before: "is not mounted from an AoE disk", though the config names the target."""
    root = sysroot()
    first = aoeboot("install-entry", "--target", "e11.0p1", "--root", str(root))
    assert first.returncode == 0, first.stderr
    again = aoeboot("install-entry", "--root", str(root))
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "nothing to change: already set up to boot from AoE"


# ---- 12: text that reaches other programs ----

NAS = ["nas-config", "--mac", "52:54:00:12:34:56", "--target", "e11.0p1", "--format", "dnsmasq"]


@pytest.mark.parametrize(
    "option, value",
    [
        ("--bios-image", "tag:evil"),
        ("--efi-image", "net:evil"),
        ("--script", "tag:ipxe"),
        ("--script", "SET:x/boot.ipxe"),
    ],
)
def test_a_boot_file_dnsmasq_would_read_as_a_tag_is_refused(option, value):
    """Before: `dhcp-boot=...,tag:evil`, which dnsmasq rejects: the NAS's DHCP server does not
    start."""
    line = one_line_error(aoeboot(*NAS, option, value))
    assert line == (
        f"aoeboot: {option}: {value!r} is neither a path nor a URL (scheme://...): "
        "dnsmasq would read it as a tag"
    )


@pytest.mark.parametrize("length", [129, 300, 5000])
@pytest.mark.parametrize("option", ["--script", "--bios-image"])
def test_a_boot_file_longer_than_the_dhcp_file_field_is_refused(option, length):
    """Before: 300 and 5000 characters were printed into the fragment."""
    line = one_line_error(aoeboot(*NAS, option, "a" * length))
    assert line.endswith(
        f"... ({length} bytes) is longer than the 128 bytes of the DHCP file "
        "field, where the boot file name goes"
    )


def test_urls_and_paths_stay_boot_files():
    out = aoeboot(*NAS, "--script", "http://nas:8080/box/boot.ipxe", "--bios-image", "a" * 128)
    assert out.returncode == 0, out.stderr
    assert "tag:ipxe,http://nas:8080/box/boot.ipxe\n" in out.stdout


@pytest.mark.parametrize(
    "url",
    [
        "http://nas/x||shell",
        "http://nas/${net0/mac}",
        "http://nas/a&&b",
        "nas/boot",
        "http://nas/a b",
    ],
)
def test_a_base_url_iPXE_would_read_otherwise_is_refused(tmp_path, url):
    """Before: any text; it went into every kernel and initrd line of the boot script."""
    from aoeboot import config as configuration
    from aoeboot import ipxe
    from aoeboot.target import Target

    with pytest.raises(AoebootError, match="url: invalid base URL"):
        configuration.parse(f"[publish]\nurl = {url}\n", where="aoeboot.conf")
    with pytest.raises(AoebootError, match="invalid base URL"):
        ipxe.render("box", [], Target(11, 0, 1), url)


@pytest.mark.parametrize("word", ["||", "&&", ";", "x=${net0/ip}"])
def test_kernel_options_iPXE_would_read_as_operators_are_refused(word):
    """Before: copied into the kernel line, where iPXE ends the command at || (and runs what
    follows as a command) or expands ${...}."""
    from aoeboot import ipxe
    from aoeboot.target import Target

    kernel = ipxe.Published("6.1", "vmlinuz-6.1", "initrd-6.1", f"ro {word} quiet")
    with pytest.raises(AoebootError, match=f"the options of kernel 6.1 hold '{re.escape(word)}'"):
        ipxe.render("box", [kernel], Target(11, 0, 1))


@pytest.mark.parametrize(
    "options, shown",
    [
        ('subvol="my root",compress=zstd', "'rootflags=subvol=\"my'"),
        (r"subvol=my\040root", "'rootflags=subvol=my root'"),
    ],
)
def test_root_mount_options_the_command_line_cannot_carry_are_refused(sysroot, options, shown):
    """Before: `rootflags=subvol="my` (an unterminated quote the next run refused) and
    `rootflags=subvol=my\\040root` (escaped as fstab writes it) went into /etc/kernel/cmdline."""
    root = sysroot(fstab=f"UUID=1234 / btrfs {options} 0 0\n")
    line = one_line_error(aoeboot("install-entry", "--target", "e11.0p1", "--root", str(root)))
    assert line == (
        f"aoeboot: {root}/etc/fstab: / is mounted with {shown}, which the kernel "
        "command line cannot carry to the initramfs (a blank, quote or backslash) "
        "(rename the subvolume or label)"
    )
    assert written(root) == ["etc/fstab"]


# ---- 14: smaller ones ----


def test_an_unreadable_boot_entry_is_a_check_in_the_json(sysroot):
    """Before: only a warning on stderr; --json said nothing of the entry."""
    root = sysroot(
        kver=KVER,
        entries={f"fedora-{KVER}.conf": "title Fedora\n!!\n"},
        config="[boot]\ntarget = e11.0p1\n",
    )
    entry = root / "boot/loader/entries" / f"fedora-{KVER}.conf"
    out = aoeboot("status", "--json", "--root", str(root))
    assert out.stderr == ""
    checks = json.loads(out.stdout)["checks"]
    assert {
        "name": "entry",
        "level": "FAIL",
        "message": f"{entry}:2: not a 'key value' line: '!!'",
        "hint": "run `aoeboot install-entry`",
    } in checks


SERVER = b"\x02\x00\x00\x00\x00\x09"
OWN = b"\x02\x00\x00\x00\x00\x01"
TAG_BASE = 0x12340000


class _Sent:
    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def send(self, frame: bytes) -> None:
        self.frames.append(frame)


def _identify(model: bytes = b"vblade", sectors: int = 2048, status: int = 0x50) -> bytes:
    from aoeboot import wire

    words = [0] * 256
    padded = model.ljust(40)
    for i in range(20):
        words[27 + i] = padded[2 * i] << 8 | padded[2 * i + 1]
    words[83] = 1 << 10
    for i in range(4):
        words[100 + i] = sectors >> (16 * i) & 0xFFFF
    return (
        wire.Header(OWN, SERVER, 11, 0, wire.CMD_ATA, TAG_BASE | 0x8000, wire.FLAG_RESPONSE).pack()
        + struct.pack("!BBBB6s2x", 0, 0x04 if status & 1 else 0, 0, status, bytes(6))
        + struct.pack("<256H", *words)
    )


def _probed(identify: bytes):
    """What the userspace probe makes of one Query Config answer and this IDENTIFY reply."""
    from aoeboot import probe, wire
    from aoeboot.target import Target

    answers: dict[tuple[Target, str, str], probe.ProbedTarget] = {}
    identified: dict[tuple[Target, str, str], wire.Identity] = {}
    pending: dict[int, tuple[Target, str, str]] = {}
    config = wire.Header(
        OWN, SERVER, 11, 0, wire.CMD_QUERY_CONFIG, TAG_BASE, wire.FLAG_RESPONSE
    ).pack() + struct.pack("!HHBBH", 16, 0x4019, 2, 0x10, 0)
    sock = _Sent()
    for frame in (config, identify):
        probe._handle(frame, "eth0", sock, OWN, TAG_BASE, answers, identified, pending)
    assert len(sock.frames) == 1  # the IDENTIFY it sent
    (key,) = answers
    return probe._with_identity(answers[key], identified.get(key))


def test_identify_is_taken_from_a_good_reply():
    found = _probed(_identify())
    assert (found.size_bytes, found.model) == (2048 * 512, "vblade")


def test_an_identify_whose_ata_status_says_error_is_no_answer():
    """Before: its data was taken for the size and model."""
    found = _probed(_identify(status=0x51))
    assert (found.size_bytes, found.model) == (None, None)


def test_a_sector_count_past_lba48_is_no_size():
    """Before: 2^64-1 sectors were shown as `8589934592.0 TiB`."""
    from aoeboot.cli.discover import _human

    assert _probed(_identify(sectors=2**64 - 1)).size_bytes is None
    assert _probed(_identify(sectors=2**48)).size_bytes == 2**57
    assert _human(2**57) == "128.0 PiB"


def test_a_spoofed_model_prints_no_terminal_escape(capsys):
    """Before: the ESC and the rest of `\\e[2J\\e]0;owned\\a` went to the terminal."""
    from aoeboot.cli.discover import _print_table

    found = _probed(_identify(model=b"\x1b[2J\x1b]0;owned\x07 disk"))
    assert found.model == "?[2J?]0;owned? disk"
    _print_table(
        [
            {
                "target": "e11.0",
                "size_bytes": found.size_bytes,
                "interface": "eth0",
                "mac": "02:00:00:00:00:09",
                "model": found.model,
            }
        ],
        "userspace",
    )
    assert all(char.isprintable() for char in capsys.readouterr().out.replace("\n", ""))


def test_publish_with_a_root_that_is_not_there_is_one_line(tmp_path):
    """Before: exit 0, "published (no destination): none; nothing pending"."""
    missing = tmp_path / "nonexistent"
    assert one_line_error(aoeboot("publish", "--root", str(missing))) == (
        f"aoeboot: root {missing} is not a directory"
    )


def test_install_entry_refuses_a_command_line_iPXE_would_read_otherwise(sysroot):
    """Before: written, and kernel-install's publish put it into the NAS's iPXE script."""
    root = sysroot(config="[publish]\ndestination = /srv/tftp\n", cmdline="ro quiet || shell\n")
    before = written(root)
    line = one_line_error(aoeboot("install-entry", "--target", "e11.0p1", "--root", str(root)))
    assert line == (
        "aoeboot: the options of /etc/kernel/cmdline hold '||', which the iPXE script "
        "would read as an operator or a setting, not pass on to the kernel (remove "
        "it from /etc/kernel/cmdline)"
    )
    assert written(root) == before


def test_a_recorded_target_that_is_not_where_root_is_names_the_config(sysroot):
    root = sysroot(
        fstab="/dev/etherd/e1.0p2 / ext4 defaults 0 0\n", config="[boot]\ntarget = e1.0p1\n"
    )
    assert one_line_error(aoeboot("install-entry", "--root", str(root))) == (
        "aoeboot: the target in /etc/aoeboot/aoeboot.conf is e1.0p1, but /etc/fstab has / on "
        "e1.0p2 (--target e1.0p2)"
    )


def test_initramfs_build_takes_a_relative_chroot(tmp_path, sysroot, monkeypatch):
    """The library too (install_entry called with a relative root): on main, ValueError from
    relative_to (mkstemp names the temp absolutely); then a relative chroot in dracut's argv."""
    root = bare_root(sysroot)
    calls: list[list[str]] = []
    monkeypatch.setattr(initramfs, "run", fake_dracut(calls))
    monkeypatch.chdir(tmp_path)
    initramfs.build(KVER, Path("sysimage/boot/initramfs.img"), chroot=Path("sysimage"))
    assert calls[0][:2] == ["chroot", str(root)] and calls[0][-1].startswith("/boot/.initramfs")
    assert (root / "boot/initramfs.img").read_bytes() == AOE_IMAGE
