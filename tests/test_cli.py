from tests.helpers import aoeboot


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


def test_bad_input_is_one_line_and_exit_2_with_traceback_only_under_debug():
    out = aoeboot("discover", "--iface", "bad/x")
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "aoeboot: invalid interface 'bad/x' (an interface name or a MAC address)"
    ]
    debug = aoeboot("--debug", "discover", "--iface", "bad/x")
    assert debug.returncode == 2
    assert "Traceback" in debug.stderr and "AoebootError" in debug.stderr


def test_interrupt_exits_130_not_1():
    import click
    import pytest

    from aoeboot.cli import LazyGroup

    @click.command()
    def sleeper() -> None:
        raise KeyboardInterrupt

    group = LazyGroup(name="aoeboot")
    group.get_command = lambda ctx, name: sleeper  # type: ignore[method-assign]
    with pytest.raises(SystemExit) as exited:
        group.main(["sleeper"], prog_name="aoeboot")
    assert exited.value.code == 130
