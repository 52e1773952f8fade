from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aoeboot import config
from aoeboot.config import BootConfig, Config, PublishConfig
from aoeboot.errors import AoebootError
from aoeboot.target import Target


def test_missing_file_is_empty_config(tmp_path):
    assert config.load(tmp_path) == Config()


def test_save_load_round_trip(tmp_path):
    c = Config(
        BootConfig(Target(11, 0, 1), ("eth0", "52:54:00:aa:bb:cc"), 90, 0),
        PublishConfig(
            "ssh://root@nas:2222/srv/tftp",
            "box1",
            "http://nas/boot",
            3,
            Path("/etc/aoeboot/id"),
            Path("/etc/aoeboot/known_hosts"),
        ),
    )
    config.save(c, tmp_path)
    assert config.load(tmp_path) == c
    assert (tmp_path / "etc/aoeboot/aoeboot.conf").stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize(
    "text, message",
    [
        ("[boot]\ntarget = e1.0p99\n", "aoeboot.conf:2: target: AoE partition 99 out of range"),
        ("[boot]\ntmeout = 5\n", "aoeboot.conf:2: unknown key 'tmeout' in [boot]"),
        ("[bot]\n", "aoeboot.conf:1: unknown section [bot]"),
        ("target = e1.0\n", "aoeboot.conf:1: 'target' before any [section]"),
        ("[boot]\ntimeout = soon\n", "aoeboot.conf:2: timeout: 'soon' is not a whole number"),
        (
            "[boot]\ninterfaces = eth0 ../x\n",
            "aoeboot.conf:2: interfaces: invalid interface '../x'",
        ),
        ("[publish]\ndestination = nas:/srv\n", "aoeboot.conf:2: destination:"),
        ("[publish]\nhost = ../../etc\n", "aoeboot.conf:2: host:"),
        ("[boot]\ntarget = e1.0\ntarget = e2.0\n", "aoeboot.conf:3: 'target' given twice"),
        ("[boot]\njunk\n", "aoeboot.conf:2: expected 'key = value'"),
    ],
)
def test_errors_name_file_line_and_part(tmp_path, text, message):
    path = tmp_path / "etc/aoeboot/aoeboot.conf"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    with pytest.raises(AoebootError) as err:
        config.load(tmp_path)
    assert message in str(err.value)
    assert str(path) in str(err.value)


@given(st.integers(0, 0xFFFE), st.integers(0, 0xFE), st.integers(1, 86400))
def test_render_parse_round_trip(shelf, slot, timeout):
    c = Config(BootConfig(Target(shelf, slot), (), timeout))
    assert config.parse(config.render(c)) == c
