"""/etc/default/grub: GRUB_CMDLINE_LINUX carries our options; nothing else changes."""

from __future__ import annotations

import pytest

from aoeboot import grubdefault
from aoeboot.errors import AoebootError

OURS = ("root=/dev/etherd/e11.0p3", "rootfstype=btrfs", "rootflags=subvol=root")
FEDORA = """GRUB_TIMEOUT=5
GRUB_DISTRIBUTOR="$(sed 's, release .*$,,g' /etc/system-release)"
GRUB_DEFAULT=saved
GRUB_CMDLINE_LINUX="rhgb quiet rootflags=subvol=old"
GRUB_ENABLE_BLSCFG=true
"""


def grub_root(tmp_path, text):
    (tmp_path / "etc/default").mkdir(parents=True)
    (tmp_path / "etc/default/grub").write_text(text)
    return tmp_path


def test_our_options_replace_only_ours(tmp_path):
    root = grub_root(tmp_path, FEDORA)
    assert grubdefault.ensure(root, OURS) is True
    text = (root / "etc/default/grub").read_text()
    assert text == FEDORA.replace(
        '"rhgb quiet rootflags=subvol=old"', '"rhgb quiet ' + " ".join(OURS) + '"'
    )
    cmdline = grubdefault.current(root)
    assert cmdline is not None and cmdline.options == ("rhgb", "quiet", *OURS)
    assert grubdefault.ensure(root, OURS) is False  # idempotent


def test_no_file_nothing_to_do(tmp_path):
    assert grubdefault.ensure(tmp_path, OURS) is False
    assert not (tmp_path / "etc").exists()


def test_missing_assignment_is_added(tmp_path):
    root = grub_root(tmp_path, "GRUB_TIMEOUT=5\n")
    assert grubdefault.ensure(root, OURS)
    assert (root / "etc/default/grub").read_text().splitlines()[-1] == (
        'GRUB_CMDLINE_LINUX="' + " ".join(OURS) + '"'
    )


@pytest.mark.parametrize(
    "line, message",
    [
        ('GRUB_CMDLINE_LINUX="rhgb quiet', "unterminated quote"),
        ('GRUB_CMDLINE_LINUX="$EXTRA quiet"', "uses shell expansion"),
        ("GRUB_CMDLINE_LINUX=$(cat /etc/x)", "cannot read"),
    ],
)
def test_what_we_cannot_read_is_a_one_line_error_naming_the_file(tmp_path, line, message):
    root = grub_root(tmp_path, f"GRUB_TIMEOUT=5\n{line}\n")
    before = (root / "etc/default/grub").read_text()
    with pytest.raises(AoebootError) as err:
        grubdefault.ensure(root, OURS)
    assert str(err.value).startswith(f"{root}/etc/default/grub:2: ") and message in str(err.value)
    assert (root / "etc/default/grub").read_text() == before  # nothing half-written


def test_single_quotes_and_export(tmp_path):
    root = grub_root(tmp_path, "export GRUB_CMDLINE_LINUX='quiet'\n")
    assert grubdefault.ensure(root, OURS)
    assert (root / "etc/default/grub").read_text() == (
        'export GRUB_CMDLINE_LINUX="quiet ' + " ".join(OURS) + '"\n'
    )
