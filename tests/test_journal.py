"""Run as kernel-install runs it (no terminal), aoeboot logs to the journal under its own
identifier. A real systemd-journald, in a mount namespace of the test's own with /run/systemd
and /run/log on fresh tmpfs, so the host's logging is never touched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import REPO, require_programs, require_root

JOURNALD = Path("/lib/systemd/systemd-journald")

# Inside the namespace: journald on fresh tmpfs, the command (stderr to a file, no terminal),
# then what the journal holds as JSON lines.
SCRIPT = """
set -u
mount -t tmpfs tmpfs /run/systemd && mkdir -p /run/log && mount -t tmpfs tmpfs /run/log || exit 90
"$JOURNALD" & journald=$!
i=0; while [ ! -S /run/systemd/journal/socket ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
"$@" > "$OUT/stdout" 2> "$OUT/stderr" < /dev/null
echo $? > "$OUT/rc"
journalctl --directory /run/log/journal --sync > /dev/null 2>&1
sleep 0.3
journalctl --directory /run/log/journal -o json SYSLOG_IDENTIFIER=aoeboot > "$OUT/journal"
kill $journald
"""


def in_private_journal(
    tmp_path: Path, *argv: str, env=None
) -> tuple[int, str, list[dict[str, Any]]]:
    require_root()
    require_programs("unshare", "journalctl")
    if not JOURNALD.exists():
        pytest.fail(f"{JOURNALD} missing (Debian package systemd)")
    out = tmp_path / "out"
    out.mkdir()
    run_env = {**(env or os.environ), "JOURNALD": str(JOURNALD), "OUT": str(out)}
    proc = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", SCRIPT, "sh", *argv],
        env=run_env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    entries = [json.loads(line) for line in (out / "journal").read_text().splitlines()]
    return int((out / "rc").read_text()), (out / "stderr").read_text(), entries


def test_errors_reach_the_journal_and_stderr(tmp_path):
    rc, stderr, entries = in_private_journal(
        tmp_path,
        sys.executable,
        "-m",
        "aoeboot",
        "kernel-install",
        "add",
        "../etc",
        str(tmp_path),
        "/boot/vmlinuz",
    )
    assert rc == 2
    message = "invalid kernel version '../etc' (must be one plain file name)"
    assert stderr.strip() == f"aoeboot: {message}"
    assert (message, "3") in [(e["MESSAGE"], e["PRIORITY"]) for e in entries]  # 3: LOG_ERR


def test_kernel_install_warning_reaches_the_journal(tmp_path, aoe_initrd):
    """An unreachable NAS: the install succeeds, the warning is in the journal."""
    kver, initrd = aoe_initrd
    root, conf = tmp_path / "root", tmp_path / "conf"
    (root / "etc/aoeboot").mkdir(parents=True)
    conf.mkdir()
    (conf / "cmdline").write_text("ro quiet\n")
    # /proc refuses new directories: the NAS "directory" can never be written
    (root / "etc/aoeboot/aoeboot.conf").write_text(
        "[boot]\ntarget = e11.0p1\n[publish]\ndestination = /proc/aoeboot-nas\nhost = box\n"
    )
    env = {
        **os.environ,
        "AOEBOOT_ROOT": str(root),
        "KERNEL_INSTALL_CONF_ROOT": str(conf),
        "KERNEL_INSTALL_LAYOUT": "bls",
        "KERNEL_INSTALL_BOOT_ROOT": str(tmp_path / "boot"),
    }
    rc, stderr, entries = in_private_journal(
        tmp_path,
        sys.executable,
        "-m",
        "aoeboot",
        "kernel-install",
        "add",
        kver,
        str(tmp_path / "entry"),
        "/boot/vmlinuz-" + kver,
        str(initrd),
        env=env,
    )
    assert rc == 0, stderr
    warnings = [e for e in entries if e["PRIORITY"] == "4"]
    assert any(
        "publishing to /proc/aoeboot-nas failed" in e["MESSAGE"]
        and "recorded as pending" in e["MESSAGE"]
        for e in warnings
    ), entries
    assert "recorded as pending" in stderr  # and on stderr, for the person running dnf
    assert (conf / "cmdline").read_text() == "ro quiet root=/dev/etherd/e11.0p1\n"
