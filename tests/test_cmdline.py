import pytest
from hypothesis import given
from hypothesis import strategies as st

from aoeboot.cmdline import Cmdline, aoe_options
from aoeboot.errors import AoebootError
from aoeboot.target import Target


def test_parse_quotes_and_last_value_wins():
    c = Cmdline.parse('  ro quiet root=/dev/sda1 acpi_osi="Windows 2009"  root=UUID=x\n')
    assert c.options == ("ro", "quiet", "root=/dev/sda1", 'acpi_osi="Windows 2009"', "root=UUID=x")
    assert c.get("root") == "UUID=x"
    assert c.get("acpi_osi") == "Windows 2009"
    assert c.get("quiet") == ""
    assert c.get("missing") is None


def test_with_owned_keeps_foreign_options_in_order():
    c = Cmdline.parse("ro root=/dev/sda1 rd.aoe.iface=eth9 quiet rd.aoe.timeout=5 splash")
    new = c.with_owned(aoe_options(Target(11, 0, 1), ["eth0", "52:54:00:12:34:56"], 60))
    assert new.render() == (
        "ro quiet splash root=/dev/etherd/e11.0p1 rd.aoe.iface=eth0,52:54:00:12:34:56 "
        "rd.aoe.timeout=60"
    )
    assert new.with_owned(aoe_options(Target(11, 0, 1), ["eth0", "52:54:00:12:34:56"], 60)) == new


@pytest.mark.parametrize(
    "bad, what", [('root="x', "unterminated quote"), ("a\x01b", "control character")]
)
def test_malformed(bad, what):
    with pytest.raises(AoebootError, match=what):
        Cmdline.parse(bad, where="/etc/kernel/cmdline")


words = st.text(
    st.characters(min_codepoint=33, max_codepoint=126, blacklist_characters='"'), min_size=1
)


@given(st.lists(words, max_size=8))
def test_round_trip(options):
    c = Cmdline(tuple(options))
    assert Cmdline.parse(c.render()) == c
