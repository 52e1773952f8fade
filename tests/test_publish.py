"""Publishing to a directory and over real ssh (sshd in a namespace the test made), pending
publishes completed later, and SIGKILL at many points of a publish."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aoeboot import config as configuration
from aoeboot import publish
from aoeboot.config import BootConfig, Config, PublishConfig
from aoeboot.target import Target
from aoeboot.transport import sha256
from aoelab.netns import Namespace
from tests.helpers import REPO, aoeboot, require_programs, require_root

OPTIONS = ("ro", "root=/dev/etherd/e11.0p1", "rd.aoe.iface=eth0")


def files(tmp_path: Path, kver: str, size: int = 300_000) -> tuple[Path, Path]:
    kernel = tmp_path / f"vmlinuz-{kver}"
    initrd = tmp_path / f"initrd-{kver}"
    kernel.write_bytes(os.urandom(size))
    initrd.write_bytes(os.urandom(size * 3))
    return kernel, initrd


def dir_config(dest: Path, keep: int = 2) -> Config:
    return Config(BootConfig(Target(11, 0, 1), ("52:54:00:12:34:56",)),
                  PublishConfig(str(dest), keep=keep))


def assert_consistent(host_dir: Path) -> list:
    """The script names only files that exist, complete: content-addressed names self-verify."""
    script = (host_dir / "boot.ipxe").read_text()
    named = [w for line in script.splitlines() if line.startswith(("kernel ", "initrd "))
             for w in line.split()[1:2]]
    for name in named:
        digest = sha256(host_dir / name)
        assert name.rsplit("-", 1)[1] == digest[:12], f"{name} does not match its content"
    return named


def test_publish_to_directory_incremental_and_remove(tmp_path):
    nas = tmp_path / "nas"
    config = dir_config(nas)
    root = tmp_path / "root"
    k1 = files(tmp_path, "6.1.0-55-amd64")
    k2 = files(tmp_path, "6.1.0-56-amd64")
    publish.after_add(root=root, config=config, kver="6.1.0-55-amd64", kernel=k1[0], initrd=k1[1],
                      options=OPTIONS)
    publish.after_add(root=root, config=config, kver="6.1.0-56-amd64", kernel=k2[0], initrd=k2[1],
                      options=OPTIONS)
    host = nas / "52-54-00-12-34-56"
    named = assert_consistent(host)
    assert [n.split("-")[0] for n in named] == ["vmlinuz", "initrd", "vmlinuz", "initrd"]
    assert "6.1.0-56-amd64" in named[0]  # the newest first, the previous as fallback
    state = publish.read_state(root)
    assert state["state"] == "done" and state["kernels"] == ["6.1.0-56-amd64", "6.1.0-55-amd64"]
    assert (host / "boot.ipxe").stat().st_mode & 0o777 == 0o644

    # unchanged re-publish: nothing is sent at all, and the script is the same file
    script_inode = (host / "boot.ipxe").stat().st_ino
    dest = publish.destination(config, root)
    publish.publish_kernel(dest, config, "52-54-00-12-34-56", "6.1.0-56-amd64", k2[0], k2[1],
                           OPTIONS)
    assert dest.sent_bytes == 0
    assert (host / "boot.ipxe").stat().st_ino == script_inode

    publish.after_remove(root=root, config=config, kver="6.1.0-56-amd64")
    assert len(assert_consistent(host)) == 2
    assert publish.read_state(root)["kernels"] == ["6.1.0-55-amd64"]
    assert sorted(p.name for p in host.iterdir() if "-6.1.0-56-amd64-" in p.name) == []
    # the last bootable kernel stays
    publish.after_remove(root=root, config=config, kver="6.1.0-55-amd64")
    assert len(assert_consistent(host)) == 2


def test_keep_limits_kernels(tmp_path):
    config = dir_config(tmp_path / "nas", keep=2)
    for n in (50, 52, 51):
        k = files(tmp_path, f"6.1.0-{n}-amd64", 1000)
        publish.after_add(root=tmp_path / "root", config=config, kver=f"6.1.0-{n}-amd64",
                          kernel=k[0], initrd=k[1], options=OPTIONS)
    assert publish.read_state(tmp_path / "root")["kernels"] == ["6.1.0-52-amd64", "6.1.0-51-amd64"]
    assert len(list((tmp_path / "nas/52-54-00-12-34-56").glob("vmlinuz-*"))) == 2


def test_unreachable_nas_is_pending_then_completed(tmp_path):
    require_root()
    nas = tmp_path / "nas"
    nas.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", str(nas)], check=True)
    root = tmp_path / "root"
    configuration.save(dir_config(nas / "tftp"), root)
    k = files(tmp_path, "6.1.0-56-amd64")
    try:
        publish.after_add(root=root, config=configuration.load(root), kver="6.1.0-56-amd64",
                          kernel=k[0], initrd=k[1], options=OPTIONS)  # must not raise
        state = publish.read_state(root)
        assert state["state"] == "pending" and state["pending"][0]["kver"] == "6.1.0-56-amd64"
        assert "read-only file system" in state["error"].lower()
        out = aoeboot("publish", "--root", str(root))
        assert out.returncode == 2 and "publishing to" in out.stderr
        subprocess.run(["mount", "-o", "remount,rw,size=8m", str(nas)], check=True)
        out = aoeboot("publish", "--root", str(root), "--json")
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["state"] == "done"
        assert_consistent(nas / "tftp/52-54-00-12-34-56")
    finally:
        subprocess.run(["umount", str(nas)], check=True)


KILLER = """
import sys
sys.path.insert(0, {repo!r})
from pathlib import Path
from aoeboot import publish
from tests.test_publish import dir_config, OPTIONS
config = dir_config(Path({nas!r}))
publish.after_add(root=Path({root!r}), config=config, kver={kver!r}, kernel=Path({kernel!r}),
                  initrd=Path({initrd!r}), options=OPTIONS)
"""


def test_sigkill_at_many_points_never_leaves_a_broken_script(tmp_path):
    nas, root = tmp_path / "nas", tmp_path / "root"
    host = nas / "52-54-00-12-34-56"
    rng = random.Random(42)

    def start(run: int) -> tuple[subprocess.Popen, Path, Path]:
        kver = f"6.1.0-{40 + run}-amd64"
        kernel, initrd = files(tmp_path, kver, 3_000_000)
        proc = subprocess.Popen([sys.executable, "-c", KILLER.format(
            repo=str(REPO), nas=str(nas), root=str(root), kver=kver, kernel=str(kernel),
            initrd=str(initrd))], cwd=REPO)
        return proc, kernel, initrd

    # The shortest of three whole publishes, to spread the kills over its length (the first
    # pays for cold caches; a loaded machine slows some: the shortest is what a kill must beat).
    lengths = []
    for run in range(3):
        began = time.monotonic()
        proc, kernel, initrd = start(run)
        assert proc.wait() == 0
        lengths.append(time.monotonic() - began)
    whole = min(lengths)
    kills = 0
    for run in range(3, 33):
        proc, kernel, initrd = start(run)
        time.sleep(rng.uniform(0, whole))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        assert_consistent(host)
        kernel.unlink()
        initrd.unlink()
    assert kills >= 15, f"only {kills} of 30 publishes were cut short"


@pytest.fixture
def sshd(tmp_path):
    """A real sshd in a namespace of our own (only its loopback), with its own keys."""
    require_root()
    require_programs("sshd", "ssh", "rsync", "ssh-keygen")
    keys = tmp_path / "ssh"
    keys.mkdir()
    for name in ("host", "client"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / name)],
                       check=True)
    (keys / "authorized_keys").write_text((keys / "client.pub").read_text())
    host_key = (keys / "host.pub").read_text().split()
    (keys / "known_hosts").write_text(f"[127.0.0.1]:2222 {host_key[0]} {host_key[1]}\n")
    (keys / "sshd_config").write_text(
        f"Port 2222\nListenAddress 127.0.0.1\nHostKey {keys / 'host'}\n"
        f"AuthorizedKeysFile {keys / 'authorized_keys'}\nPidFile {keys / 'sshd.pid'}\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\nUsePAM no\nStrictModes no\n")
    Path("/run/sshd").mkdir(exist_ok=True)
    with Namespace("aoessh") as ns:
        proc = ns.popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(keys / "sshd_config")],
                        stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        assert proc.poll() is None, "sshd did not start"
        yield ns, keys
        proc.terminate()


SSH_PUBLISH = """
import json, sys
sys.path.insert(0, {repo!r})
from pathlib import Path
from aoeboot import publish
from aoeboot.config import BootConfig, Config, PublishConfig
from aoeboot.target import Target
config = Config(BootConfig(Target(11, 0, 1), ("52:54:00:12:34:56",)),
                PublishConfig({url!r}, ssh_identity=Path({key!r}), ssh_known_hosts=Path({kh!r})))
dest = publish.destination(config)
kernels = publish.publish_kernel(dest, config, "52-54-00-12-34-56", {kver!r}, Path({kernel!r}),
                                 Path({initrd!r}), ("ro", "root=/dev/etherd/e11.0p1"))
print(json.dumps({{"kernels": kernels, "sent": dest.sent_bytes}}))
"""


def test_publish_over_ssh(sshd, tmp_path):
    ns, keys = sshd
    remote = tmp_path / "remote"
    url = f"ssh://root@127.0.0.1:2222{remote}"
    k = files(tmp_path, "6.1.0-56-amd64")

    def run(kh=keys / "known_hosts"):
        return ns.run([sys.executable, "-c", SSH_PUBLISH.format(
            repo=str(REPO), url=url, key=str(keys / "client"), kh=str(kh), kver="6.1.0-56-amd64",
            kernel=str(k[0]), initrd=str(k[1]))], check=False, cwd=REPO)

    first = run()
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["kernels"] == ["6.1.0-56-amd64"]
    assert json.loads(first.stdout)["sent"] > 1_200_000
    assert_consistent(remote / "52-54-00-12-34-56")
    again = run()
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["sent"] == 0  # nothing changed: nothing uploaded

    (keys / "wrong_known_hosts").write_text("[127.0.0.1]:2222 ssh-ed25519 "
                                            "AAAAC3NzaC1lZDI1NTE5AAAAIFakeFakeFakeFakeFakeFakeFakeFakeFakeFakeFake\n")
    refused = run(keys / "wrong_known_hosts")
    assert refused.returncode != 0
    # host keys are checked, never skipped
    # (whatever rsync's own exit code: 255 or 12 from rsync 3.5, as ssh's end races)
    assert "root@127.0.0.1:" in refused.stderr and " failed (exit code " in refused.stderr
    error = refused.stderr.strip().splitlines()[-1]
    assert "; ssh: " in error and "host key" in error.split("; ssh: ")[1].lower(), error
