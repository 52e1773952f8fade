import pytest
from hypothesis import given
from hypothesis import strategies as st

from aoeboot.bls import BootEntry, entries_for
from aoeboot.cmdline import Cmdline, aoe_options
from aoeboot.errors import AoebootError
from aoeboot.target import Target

FEDORA = """\
# written by 20-grub.install
title Fedora Linux (6.11.4-301.fc41.x86_64) 41 (Workstation Edition)
version 6.11.4-301.fc41.x86_64
linux /vmlinuz-6.11.4-301.fc41.x86_64
initrd /initramfs-6.11.4-301.fc41.x86_64.img $tuned_initrd
options root=UUID=1234 ro rhgb quiet
grub_users $grub_users
grub_arg --unrestricted
grub_class fedora
"""


def test_parse_keeps_everything_and_round_trips():
    entry = BootEntry.parse(FEDORA)
    assert entry.render() == FEDORA
    assert entry.get("version") == "6.11.4-301.fc41.x86_64"
    assert entry.get_all("initrd") == ["/initramfs-6.11.4-301.fc41.x86_64.img $tuned_initrd"]
    assert entry.options == Cmdline(("root=UUID=1234", "ro", "rhgb", "quiet"))


def test_changing_options_changes_only_the_options_line():
    entry = BootEntry.parse(FEDORA)
    new = entry.with_options(entry.options.with_owned(aoe_options(Target(11, 0, 1), ["eth0"])))
    expected = FEDORA.replace(
        "options root=UUID=1234 ro rhgb quiet",
        "options ro rhgb quiet root=/dev/etherd/e11.0p1 rd.aoe.iface=eth0",
    )
    assert new.render() == expected


def test_entry_without_options_gets_one():
    entry = BootEntry.parse("title x\nversion 1\nlinux /a\n")
    assert entry.with_options(Cmdline(("ro",))).render() == (
        "title x\nversion 1\nlinux /a\noptions ro\n"
    )


def test_malformed_line_names_file_and_line():
    with pytest.raises(AoebootError, match=r"x.conf:2: not a 'key value' line"):
        BootEntry.parse("title a\n=== broken\n", where="x.conf")


def test_entries_for_finds_token_and_tries_and_version(tmp_path):
    entries = tmp_path / "loader/entries"
    entries.mkdir(parents=True)
    (entries / "abc-6.1.0-56-amd64.conf").write_text("version 6.1.0-56-amd64\n")
    (entries / "abc-6.1.0-56-amd64+3.conf").write_text("version 6.1.0-56-amd64\n")
    (entries / "grub-style.conf").write_text("version 6.1.0-56-amd64\n")
    (entries / "abc-6.1.0-55-amd64.conf").write_text("version 6.1.0-55-amd64\n")
    assert [p.name for p in entries_for(tmp_path, "6.1.0-56-amd64")] == [
        "abc-6.1.0-56-amd64+3.conf",
        "abc-6.1.0-56-amd64.conf",
        "grub-style.conf",
    ]


keys = st.sampled_from(["title", "version", "linux", "initrd", "options", "machine-id", "sort-key"])
values = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=20)


@given(st.lists(st.tuples(keys, values), max_size=8))
def test_round_trip(pairs):
    text = "".join(f"{k} {v}\n" for k, v in pairs)
    assert BootEntry.parse(text).render() == text


@pytest.mark.parametrize(
    "lines, main",
    [
        ("initrd /initramfs-6.1.img\n", "/initramfs-6.1.img"),
        ("initrd /intel-ucode.img\ninitrd /MID/6.1/initrd\n", "/MID/6.1/initrd"),
        ("initrd /initramfs-6.1.img $tuned_initrd\n", "/initramfs-6.1.img"),  # Fedora's grub
        ("initrd /amd-ucode.img /initramfs-6.1.img\n", "/initramfs-6.1.img"),
        ("", None),
    ],
)
def test_the_main_initrd_is_the_last_image_named(lines, main):
    entry = BootEntry.parse(f"title T\nlinux /vmlinuz-6.1\n{lines}options ro\n")
    assert entry.main_initrd() == main
