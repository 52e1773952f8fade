from tests.conftest import aoeboot


def test_help_lists_commands_and_exit_codes():
    out = aoeboot("--help")
    assert out.returncode == 0, out.stderr
    assert "Exit codes" in out.stdout
    assert "discover" in out.stdout


def test_unknown_command_is_usage_error():
    out = aoeboot("no-such-command")
    assert out.returncode == 2
    assert "no-such-command" in out.stderr


def test_version():
    out = aoeboot("--version")
    assert out.returncode == 0 and "aoeboot, version" in out.stdout
