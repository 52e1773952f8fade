"""The man page and shell completion: they cover what the CLI really has."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from aoeboot import cli, config
from tests.helpers import REPO, require_programs

MAN = REPO / "doc" / "aoeboot.1"


def _man_text() -> str:
    # troff escapes the hyphens of option and command names: read them back plain
    return MAN.read_text().replace("\\-", "-")


def test_man_page_names_every_command_and_config_key():
    text = _man_text()
    commands = text.split(".SH COMMANDS")[1].split(".SH ")[0]
    headings = re.findall(r"^\.TP\n\.BR (\S+)(.*)$", commands, re.M)
    assert sorted(name for name, _ in headings) == sorted(cli.COMMANDS)
    assert all(
        f'"{alias}' in rest or f" {alias}" in rest
        for name, rest in headings
        for alias, aliased in cli.ALIASES.items()
        if name == aliased
    )
    for section, keys in config._SCHEMA.items():
        for key in keys:
            assert f".B [{section}] {key}" in text, f"man page lacks [{section}] {key}"


def test_man_page_renders_without_warnings():
    require_programs("groff")
    out = subprocess.run(
        ["groff", "-man", "-Tutf8", "-ww", "-z", str(MAN)],
        capture_output=True,
        text=True,
        env={**os.environ, "LC_ALL": "C.UTF-8"},
        check=False,
    )
    assert out.returncode == 0 and out.stderr == "", out.stderr


def _complete(words: str, cword: int) -> list[str]:
    env = {
        **os.environ,
        "COMP_WORDS": words,
        "COMP_CWORD": str(cword),
        "_AOEBOOT_COMPLETE": "bash_complete",
    }
    out = subprocess.run(
        [sys.executable, "-m", "aoeboot"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return [line.split(",", 1)[1] for line in out.stdout.splitlines()]


def test_completion_of_commands_and_options():
    assert _complete("aoeboot sta", 1) == ["status"]
    assert sorted(_complete("aoeboot ", 1)) == sorted(cli.COMMANDS)
    assert "--json" in _complete("aoeboot status --", 2)


def test_shipped_bash_completion_file_completes_in_bash(tmp_path: Path):
    require_programs("bash")
    shim = tmp_path / "aoeboot"  # what the package installs as /usr/bin/aoeboot
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m aoeboot "$@"\n')
    shim.chmod(0o755)
    script = (
        'source "$1"; COMP_WORDS=(aoeboot nas-config --form); COMP_CWORD=2; '
        '_aoeboot_completion aoeboot; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    out = subprocess.run(
        ["bash", "-c", script, "bash", str(REPO / "completion/aoeboot.bash")],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
        env={**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"},
    )
    assert out.stdout.split() == ["--format"], out.stdout + out.stderr


def test_guide_and_man_page_name_the_networkmanager_dropin_and_each_setting():
    """What install-entry writes for NetworkManager, the guide explains setting by setting."""
    from aoeboot import nmconf, paths

    guide = (REPO / "doc" / "GUIDE.md").read_text()
    assert str(paths.NM_DROPIN) in guide and str(paths.NM_DROPIN) in _man_text()
    for key, value in {**nmconf.DEVICE, **nmconf.CONNECTION}.items():
        assert f"`{key}={value}`" in guide, f"the guide does not explain {key}={value}"
