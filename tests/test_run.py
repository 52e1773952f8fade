"""The one way aoeboot runs programs: what it logs, and what its errors say."""

import logging

import pytest

from aoeboot.errors import AoebootError
from aoeboot.run import run


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
    assert str(caught.value) == (
        "sh -c 'echo first >&2; echo '\"'\"'no such volume'\"'\"' >&2; "
        "exit 3' failed (exit code 3): no such volume"
    )
    with pytest.raises(AoebootError) as caught:
        run(["false"])
    assert str(caught.value) == "false failed (exit code 1)"
    assert run(["false"], check=False).returncode == 1


def test_no_answer_names_the_command():
    with pytest.raises(AoebootError) as caught:
        run(["sleep", "10"], timeout=0.2)
    assert str(caught.value) == "sleep 10: no answer after 0.2 s"
