"""rpmvercmp vectors from rpm's own test suite (tests/rpmvercmp.at), and rpm itself as the
oracle; the UAPI version format where it differs from rpm, and systemd itself as the oracle."""

import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aoeboot.kver import compare, newest
from aoelab.uapi import compare as uapi_compare
from aoelab.uapi import sort_key as uapi_sort_key
from tests.helpers import require_programs

VECTORS = [
    ("1.0", "1.0", 0),
    ("1.0", "2.0", -1),
    ("2.0", "1.0", 1),
    ("2.0.1", "2.0.1", 0),
    ("2.0", "2.0.1", -1),
    ("2.0.1", "2.0", 1),
    ("2.0.1a", "2.0.1a", 0),
    ("2.0.1a", "2.0.1", 1),
    ("2.0.1", "2.0.1a", -1),
    ("5.5p1", "5.5p1", 0),
    ("5.5p1", "5.5p2", -1),
    ("5.5p2", "5.5p1", 1),
    ("5.5p10", "5.5p10", 0),
    ("5.5p1", "5.5p10", -1),
    ("5.5p10", "5.5p1", 1),
    ("10xyz", "10.1xyz", -1),
    ("10.1xyz", "10xyz", 1),
    ("xyz10", "xyz10", 0),
    ("xyz10", "xyz10.1", -1),
    ("xyz10.1", "xyz10", 1),
    ("xyz.4", "xyz.4", 0),
    ("xyz.4", "8", -1),
    ("8", "xyz.4", 1),
    ("xyz.4", "2", -1),
    ("2", "xyz.4", 1),
    ("5.5p2", "5.6p1", -1),
    ("5.6p1", "5.5p2", 1),
    ("5.6p1", "6.5p1", -1),
    ("6.5p1", "5.6p1", 1),
    ("6.0.rc1", "6.0", 1),
    ("6.0", "6.0.rc1", -1),
    ("10b2", "10a1", 1),
    ("10a2", "10b2", -1),
    ("1.0aa", "1.0aa", 0),
    ("1.0a", "1.0aa", -1),
    ("1.0aa", "1.0a", 1),
    ("10.0001", "10.0001", 0),
    ("10.0001", "10.1", 0),
    ("10.1", "10.0001", 0),
    ("10.0001", "10.0039", -1),
    ("10.0039", "10.0001", 1),
    ("4.999.9", "5.0", -1),
    ("5.0", "4.999.9", 1),
    ("20101121", "20101121", 0),
    ("20101121", "20101122", -1),
    ("20101122", "20101121", 1),
    ("2_0", "2_0", 0),
    ("2.0", "2_0", 0),
    ("2_0", "2.0", 0),
    ("a", "a", 0),
    ("a+", "a+", 0),
    ("a+", "a_", 0),
    ("a_", "a+", 0),
    ("+a", "+a", 0),
    ("+a", "_a", 0),
    ("_a", "+a", 0),
    ("+_", "+_", 0),
    ("_+", "+_", 0),
    ("_+", "_+", 0),
    ("+", "_", 0),
    ("_", "+", 0),
    ("1.0~rc1", "1.0~rc1", 0),
    ("1.0~rc1", "1.0", -1),
    ("1.0", "1.0~rc1", 1),
    ("1.0~rc1", "1.0~rc2", -1),
    ("1.0~rc2", "1.0~rc1", 1),
    ("1.0~rc1~git123", "1.0~rc1~git123", 0),
    ("1.0~rc1~git123", "1.0~rc1", -1),
    ("1.0~rc1", "1.0~rc1~git123", 1),
    ("1.0^", "1.0^", 0),
    ("1.0^", "1.0", 1),
    ("1.0", "1.0^", -1),
    ("1.0^git1", "1.0^git1", 0),
    ("1.0^git1", "1.0", 1),
    ("1.0", "1.0^git1", -1),
    ("1.0^git1", "1.0^git2", -1),
    ("1.0^git2", "1.0^git1", 1),
    ("1.0^git1", "1.01", -1),
    ("1.01", "1.0^git1", 1),
    ("1.0^20160101", "1.0^20160101", 0),
    ("1.0^20160101", "1.0.1", -1),
    ("1.0.1", "1.0^20160101", 1),
    ("1.0^20160101^git1", "1.0^20160101^git1", 0),
    ("1.0^20160102", "1.0^20160101^git1", 1),
    ("1.0^20160101^git1", "1.0^20160102", -1),
    ("1.0~rc1^git1", "1.0~rc1^git1", 0),
    ("1.0~rc1^git1", "1.0~rc1", 1),
    ("1.0~rc1", "1.0~rc1^git1", -1),
    ("1.0^git1~pre", "1.0^git1~pre", 0),
    ("1.0^git1", "1.0^git1~pre", 1),
    ("1.0^git1~pre", "1.0^git1", -1),
]


@pytest.mark.parametrize("a, b, expected", VECTORS)
def test_rpmvercmp_vectors(a, b, expected):
    assert compare(a, b) == expected


def test_kernel_versions():
    kernels = [
        "6.11.4-301.fc41.x86_64",
        "6.11.10-300.fc41.x86_64",
        "6.9.0-0.rc7.fc41.x86_64",
        "6.1.0-56-amd64",
    ]
    assert newest(kernels) == "6.11.10-300.fc41.x86_64"
    assert compare("6.11.4-301.fc41.x86_64", "6.11.4-300.fc41.x86_64") == 1


def rpm_vercmp(pairs):
    """rpm's own rpmvercmp, through its Lua interpreter (rpm >= 4.16)."""
    script = "".join(f'print(rpm.vercmp("{a}", "{b}") .. " ")\n' for a, b in pairs)
    out = subprocess.run(
        ["rpm", "--eval", "%{lua:" + script + "}"], capture_output=True, text=True, check=True
    )
    return [int(line) for line in out.stdout.split()]


# No '-' or ':': rpm.vercmp() parses its arguments as epoch:version-release.
version_text = st.text(alphabet="0123456789abcz._+~^", min_size=1, max_size=10)


@settings(max_examples=300)
@given(st.lists(st.tuples(version_text, version_text), min_size=1, max_size=20))
def test_agrees_with_rpm_itself(pairs):
    require_programs("rpm")
    assert [compare(a, b) for a, b in pairs] == rpm_vercmp(pairs)


# (a, b, rpmvercmp, UAPI): pairs on which the two orders disagree, and some where they agree.
DISAGREE = [
    ("6.1-1", "6.1.1", 0, -1),  # UAPI: '-' (a release) ranks below '.' (a point release)
    ("1.0-1", "1.0.1", 0, -1),
    ("123a", "123.a", 0, 1),  # UAPI: a run with no prefix is newer than one after '.'
    ("1.0-1", "1.0^1", 1, -1),  # UAPI: '^' above '-'; rpm: '^' below anything but the end
    ("6.1.0-1", "6.1.0^1", 1, -1),
    ("1_0", "1.0", 0, 1),  # UAPI drops '_': "1_0" is 1 then 0 without a prefix
]
AGREE = [
    ("1.0-rc1", "1.0", 1, 1),  # no '~': the longer is newer in both
    ("1.0~rc1", "1.0", -1, -1),
    ("1~", "1", -1, -1),
    ("1.0^", "1.0", 1, 1),
    ("1.0^git1", "1.0.1", -1, -1),
    ("6.11.10-300.fc41.x86_64", "6.11.4-301.fc41.x86_64", 1, 1),
    ("10.0001", "10.1", 0, 0),
    ("abc", "abcde", -1, -1),
    ("a", "1", -1, -1),
]


@pytest.mark.parametrize("a, b, rpm, uapi", DISAGREE + AGREE)
def test_uapi_and_rpm_orders(a, b, rpm, uapi):
    assert (compare(a, b), uapi_compare(a, b)) == (rpm, uapi)
    assert (compare(b, a), uapi_compare(b, a)) == (-rpm, -uapi)


def test_uapi_order_of_systemd_boot_entries():
    # systemd's own example of the order, oldest first (string-util-fundamental.c)
    ordered = [
        "122.1",
        "123~rc1-1",
        "123",
        "123-a",
        "123-a.1",
        "123-1",
        "123-1.1",
        "123^post1",
        "123.a-1",
        "123.1-1",
        "123a-1",
        "124-1",
    ]
    assert sorted(reversed(ordered), key=uapi_sort_key) == ordered


def systemd_compare(a, b):
    """systemd's strverscmp_improved(), through `systemd-analyze compare-versions` (252+)."""
    out = subprocess.run(
        ["systemd-analyze", "compare-versions", "--", a, b],
        capture_output=True,
        text=True,
        check=False,
    )
    return {0: 0, 11: 1, 12: -1}[out.returncode]


uapi_text = st.text(alphabet="0123456789abz._-+~^é", min_size=0, max_size=10)


@settings(max_examples=300)
@given(uapi_text, uapi_text)
def test_uapi_agrees_with_systemd_itself(a, b):
    require_programs("systemd-analyze")
    assert uapi_compare(a, b) == systemd_compare(a, b)
