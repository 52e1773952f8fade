"""The one way aoeboot runs programs: what it logs, and what its errors say."""

import logging
import os

import pytest

from aoeboot.errors import AoebootError
from aoeboot.run import run
from aoeboot.transport import SshDestination


def test_logs_the_command_as_a_shell_line(caplog):
    with caplog.at_level(logging.DEBUG, logger="aoeboot.run"):
        run(["sh", "-c", "exit 0", "two words", "it's"])
    assert caplog.messages == ["running sh -c 'exit 0' 'two words' 'it'\"'\"'s'"]


def test_a_signal_is_named():
    with pytest.raises(AoebootError) as caught:
        run(["sh", "-c", "kill -KILL $$"])
    assert str(caught.value) == "sh -c 'kill -KILL $$' failed (killed by SIGKILL)"


def test_exit_code_and_last_line_of_stderr():
    with pytest.raises(AoebootError) as caught:
        run(["sh", "-c", "echo first >&2; echo 'no such volume' >&2; exit 3"])
    assert str(caught.value) == ("sh -c 'echo first >&2; echo '\"'\"'no such volume'\"'\"' >&2; "
                                 "exit 3' failed (exit code 3): no such volume")
    with pytest.raises(AoebootError) as caught:
        run(["false"])
    assert str(caught.value) == "false failed (exit code 1)"
    assert run(["false"], check=False).returncode == 1


def test_no_answer_names_the_command():
    with pytest.raises(AoebootError) as caught:
        run(["sleep", "10"], timeout=0.2)
    assert str(caught.value) == "sleep 10: no answer after 0.2 s"


def test_rsync_failures_are_run_errors(tmp_path, monkeypatch):
    # A stand-in rsync: the transport's error is run's, naming the command and how it ended.
    fake = tmp_path / "bin" / "rsync"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'rsync: connection unexpectedly closed' >&2\n"
                    "[ -e \"$0.kill\" ] && kill -KILL $$\nexit 12\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    dest = SshDestination.parse("ssh://backup@nas:2222/srv/tftp", None, None, "box1")
    with pytest.raises(AoebootError) as caught:
        dest.read_text("manifest.json")
    assert caught.value.message.startswith(
        "rsync -e 'ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o ConnectTimeout=10 "
        "-p 2222' -r --mkpath /")
    assert caught.value.message.endswith(
        " backup@nas:/srv/tftp/box1/ failed (exit code 12): rsync: connection unexpectedly closed")
    (tmp_path / "bin" / "rsync.kill").touch()
    with pytest.raises(AoebootError) as caught:
        dest.remove(["old-kernel"])
    assert caught.value.message.startswith("rsync -e 'ssh ")
    assert caught.value.message.endswith(
        " backup@nas:/srv/tftp/box1/ failed (killed by SIGKILL): "
        "rsync: connection unexpectedly closed")
