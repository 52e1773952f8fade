"""The one grammar of ssh destinations; rsync's failures are run's errors."""

import os

import pytest

from aoeboot.config import SshUrl, parse_ssh_url
from aoeboot.errors import AoebootError
from aoeboot.transport import SshDestination


@pytest.mark.parametrize(
    "url, parsed",
    [
        ("ssh://root@nas:2222/srv/tftp", SshUrl("root", "nas", 2222, "/srv/tftp")),
        ("ssh://nas.home.arpa/srv/tftp/", SshUrl(None, "nas.home.arpa", None, "/srv/tftp/")),
        ("ssh://back_up.1@192.168.1.10/", SshUrl("back_up.1", "192.168.1.10", None, "/")),
    ],
)
def test_ssh_urls(url, parsed):
    assert parse_ssh_url(url) == parsed


@pytest.mark.parametrize(
    "url",
    [
        "ssh://nas",
        "ssh://nas:/srv",
        "ssh://nas:0/srv",
        "ssh://nas:65536/srv",
        "ssh://@nas/srv",
        "ssh://-oProxyCommand=x/srv",
        "ssh://-v/srv",
        "ssh://-l@nas/srv",
        "ssh://us er@nas/srv",
        "ssh://[::1]/srv",
        "ssh://nas/srv\n",
        "sftp://nas/srv",
        "ssh://a@b@nas/srv",
    ],
)
def test_what_is_not_an_ssh_url(url):
    with pytest.raises(AoebootError) as caught:
        parse_ssh_url(url)
    assert str(caught.value) == f"{url!r} is not ssh://[user@]host[:port]/path"


def test_destination_is_the_url_plus_the_host_directory():
    dest = SshDestination.parse("ssh://root@nas:2222/srv/tftp/", None, None, "box1")
    assert (dest.user, dest.host, dest.port, dest.path) == ("root", "nas", 2222, "/srv/tftp/box1")


def test_rsync_failures_are_run_errors(tmp_path, monkeypatch):
    # A stand-in rsync: the transport's error is run's, naming the command and how it ended.
    fake = tmp_path / "bin" / "rsync"
    fake.parent.mkdir()
    fake.write_text(
        "#!/bin/sh\necho 'rsync: connection unexpectedly closed' >&2\n"
        '[ -e "$0.kill" ] && kill -KILL $$\nexit 12\n'
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    dest = SshDestination.parse("ssh://backup@nas:2222/srv/tftp", None, None, "box1")
    with pytest.raises(AoebootError) as caught:
        dest.read_text("manifest.json")
    assert caught.value.message.startswith(
        "rsync -e 'ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o ConnectTimeout=10 "
        "-p 2222' -r /"
    )
    assert caught.value.message.endswith(
        " backup@nas:/srv/tftp/box1/ failed (exit code 12): rsync: connection unexpectedly closed"
    )
    (tmp_path / "bin" / "rsync.kill").touch()
    with pytest.raises(AoebootError) as caught:
        dest.remove(["old-kernel"])
    assert caught.value.message.startswith("rsync -e 'ssh ")
    assert caught.value.message.endswith(
        " backup@nas:/srv/tftp/box1/ failed (killed by SIGKILL): "
        "rsync: connection unexpectedly closed"
    )
