import pytest
from hypothesis import given
from hypothesis import strategies as st

from aoeboot.errors import AoebootError
from aoeboot.target import MAX_PARTITION, MAX_SHELF, MAX_SLOT, Target

shelves = st.integers(0, MAX_SHELF)
slots = st.integers(0, MAX_SLOT)
partitions = st.none() | st.integers(1, MAX_PARTITION)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("e11.0", Target(11, 0)),
        ("aoe:e11.0", Target(11, 0)),
        ("aoe:e11.0p2", Target(11, 0, 2)),
        ("/dev/etherd/e11.0p2", Target(11, 0, 2)),
        ("etherd/e11.0", Target(11, 0)),
        ("etherd!e11.0p15", Target(11, 0, 15)),
        ("e65534.254", Target(65534, 254)),
    ],
)
def test_parse_accepted_spellings(text, expected):
    assert Target.parse(text) == expected


def test_renderings():
    t = Target(11, 0, 2)
    assert (t.name, str(t.device), t.uri, t.sysfs_name) == (
        "e11.0p2",
        "/dev/etherd/e11.0p2",
        "aoe:e11.0p2",
        "etherd!e11.0p2",
    )
    assert t.disk == Target(11, 0)


@pytest.mark.parametrize(
    "text, part",
    [
        ("e65535.0", "shelf 65535"),
        ("e1.255", "slot 255"),
        ("e1.0p0", "partition 0"),
        ("e1.0p16", "partition 16"),
        ("e1", "invalid AoE target"),
        ("x1.0", "invalid AoE target"),
        ("aoe:", "invalid AoE target"),
        ("e1.0p", "invalid AoE target"),
        ("e-1.0", "invalid AoE target"),
        ("e\u0661.0", "invalid AoE target"),  # an Arabic-Indic digit is not a shelf
        ("/dev/sda1", "invalid AoE target"),
        ("e1.0/../x", "invalid AoE target"),
    ],
)
def test_rejects_with_the_bad_part_named(text, part):
    with pytest.raises(AoebootError) as err:
        Target.parse(text)
    assert part in str(err.value)


@given(shelves, slots, partitions)
def test_round_trip_every_spelling(shelf, slot, partition):
    t = Target(shelf, slot, partition)
    for text in (t.name, t.uri, str(t.device), t.sysfs_name, "etherd/" + t.name):
        assert Target.parse(text) == t


@given(st.integers(MAX_SHELF + 1, 2**32) | st.integers(-(2**32), -1), slots)
def test_every_bad_shelf_rejected(shelf, slot):
    with pytest.raises(AoebootError, match="shelf"):
        Target(shelf, slot)
    with pytest.raises(AoebootError):
        Target.parse(f"e{shelf}.{slot}")


@given(shelves, st.integers(MAX_SLOT + 1, 2**16) | st.integers(-(2**16), -1))
def test_every_bad_slot_rejected(shelf, slot):
    with pytest.raises(AoebootError, match="slot"):
        Target(shelf, slot)


@given(shelves, slots, st.integers(MAX_PARTITION + 1, 1000) | st.integers(-1000, 0))
def test_every_bad_partition_rejected(shelf, slot, partition):
    with pytest.raises(AoebootError, match="partition"):
        Target(shelf, slot, partition)
    with pytest.raises(AoebootError, match="partition" if partition >= 0 else "invalid AoE target"):
        Target.parse(f"e{shelf}.{slot}p{partition}")
