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
from typing import Any

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
    dest.mkdir(parents=True, exist_ok=True)  # the NAS's share: aoeboot never makes it
    return Config(
        BootConfig(Target(11, 0, 1), ("52:54:00:12:34:56",)), PublishConfig(str(dest), keep=keep)
    )


def assert_consistent(host_dir: Path) -> list[str]:
    """The script names only files that exist, complete: content-addressed names self-verify."""
    script = (host_dir / "boot.ipxe").read_text()
    named = [
        w
        for line in script.splitlines()
        if line.startswith(("kernel ", "initrd "))
        for w in line.split()[1:2]
    ]
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
    publish.after_add(
        root=root, config=config, kver="6.1.0-55-amd64", kernel=k1[0], initrd=k1[1], options=OPTIONS
    )
    publish.after_add(
        root=root, config=config, kver="6.1.0-56-amd64", kernel=k2[0], initrd=k2[1], options=OPTIONS
    )
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
    publish.publish_kernel(
        dest, config, "52-54-00-12-34-56", "6.1.0-56-amd64", k2[0], k2[1], OPTIONS
    )
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
        publish.after_add(
            root=tmp_path / "root",
            config=config,
            kver=f"6.1.0-{n}-amd64",
            kernel=k[0],
            initrd=k[1],
            options=OPTIONS,
        )
    assert publish.read_state(tmp_path / "root")["kernels"] == ["6.1.0-52-amd64", "6.1.0-51-amd64"]
    assert len(list((tmp_path / "nas/52-54-00-12-34-56").glob("vmlinuz-*"))) == 2


def test_unreachable_nas_is_pending_then_completed(tmp_path):
    require_root()
    nas = tmp_path / "nas"
    nas.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", str(nas)], check=True)
    root = tmp_path / "root"
    configuration.save(dir_config(nas), root)
    k = files(tmp_path, "6.1.0-56-amd64")
    try:
        publish.after_add(
            root=root,
            config=configuration.load(root),
            kver="6.1.0-56-amd64",
            kernel=k[0],
            initrd=k[1],
            options=OPTIONS,
        )  # must not raise
        state = publish.read_state(root)
        assert state["state"] == "pending" and state["pending"][0]["kver"] == "6.1.0-56-amd64"
        assert state["error"] is not None
        assert "read-only file system" in state["error"].lower()
        out = aoeboot("publish", "--root", str(root))
        assert out.returncode == 2 and "publishing to" in out.stderr
        subprocess.run(["mount", "-o", "remount,rw,size=8m", str(nas)], check=True)
        out = aoeboot("publish", "--root", str(root), "--json")
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["state"] == "done"
        assert_consistent(nas / "52-54-00-12-34-56")
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

    def start(run: int) -> tuple[subprocess.Popen[bytes], Path, Path]:
        kver = f"6.1.0-{40 + run}-amd64"
        kernel, initrd = files(tmp_path, kver, 3_000_000)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                KILLER.format(
                    repo=str(REPO),
                    nas=str(nas),
                    root=str(root),
                    kver=kver,
                    kernel=str(kernel),
                    initrd=str(initrd),
                ),
            ],
            cwd=REPO,
        )
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
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / name)], check=True
        )
    (keys / "authorized_keys").write_text((keys / "client.pub").read_text())
    host_key = (keys / "host.pub").read_text().split()
    (keys / "known_hosts").write_text(f"[127.0.0.1]:2222 {host_key[0]} {host_key[1]}\n")
    (keys / "sshd_config").write_text(
        f"Port 2222\nListenAddress 127.0.0.1\nHostKey {keys / 'host'}\n"
        f"AuthorizedKeysFile {keys / 'authorized_keys'}\nPidFile {keys / 'sshd.pid'}\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\nUsePAM no\nStrictModes no\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)
    with Namespace("aoessh") as ns:
        proc = ns.popen(
            ["/usr/sbin/sshd", "-D", "-e", "-f", str(keys / "sshd_config")],
            stderr=subprocess.DEVNULL,
        )
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
    remote.mkdir()
    url = f"ssh://root@127.0.0.1:2222{remote}"
    k = files(tmp_path, "6.1.0-56-amd64")

    def run(kh=keys / "known_hosts"):
        return ns.run(
            [
                sys.executable,
                "-c",
                SSH_PUBLISH.format(
                    repo=str(REPO),
                    url=url,
                    key=str(keys / "client"),
                    kh=str(kh),
                    kver="6.1.0-56-amd64",
                    kernel=str(k[0]),
                    initrd=str(k[1]),
                ),
            ],
            check=False,
            cwd=REPO,
        )

    first = run()
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["kernels"] == ["6.1.0-56-amd64"]
    assert json.loads(first.stdout)["sent"] > 1_200_000
    assert_consistent(remote / "52-54-00-12-34-56")
    kept = user_files(remote / "52-54-00-12-34-56")  # the user's: rsync must leave them
    again = run()
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["sent"] == 0  # nothing changed: nothing uploaded
    assert_nas_ok(remote / "52-54-00-12-34-56", kept)

    (keys / "wrong_known_hosts").write_text(
        "[127.0.0.1]:2222 ssh-ed25519 "
        "AAAAC3NzaC1lZDI1NTE5AAAAIFakeFakeFakeFakeFakeFakeFakeFakeFakeFakeFake\n"
    )
    refused = run(keys / "wrong_known_hosts")
    assert refused.returncode != 0
    # host keys are checked, never skipped
    # (whatever rsync's own exit code: 255 or 12 from rsync 3.5, as ssh's end races)
    assert "root@127.0.0.1:" in refused.stderr and " failed (exit code " in refused.stderr
    error = refused.stderr.strip().splitlines()[-1]
    assert "; ssh: " in error and "host key" in error.split("; ssh: ")[1].lower(), error


# ---- the NAS's files: only ours are touched, and never two publishes at once ----

BOX_MAC_DIR = "52-54-00-12-34-56"


def user_files(directory: Path) -> dict[str, bytes]:
    """Files a user keeps in the box's NAS directory, none of them ours."""
    directory.mkdir(parents=True, exist_ok=True)
    kept = {
        "notes.txt": b"my notes\n",
        "vmlinuz-other": os.urandom(1000),
        "config.txt": b"x=1\n",
        "db.sqlite": os.urandom(5000),
    }
    for name, data in kept.items():
        (directory / name).write_bytes(data)
    return kept


def assert_nas_ok(host_dir: Path, kept: dict[str, bytes]) -> list[str]:
    """After every case: a script naming only complete files, and none of the user's gone."""
    named = assert_consistent(host_dir)
    for name, data in kept.items():
        assert (host_dir / name).read_bytes() == data, f"the user's {name} is gone or changed"
    return named


def published_kvers(host_dir: Path) -> list[str]:
    return [k["kver"] for k in json.loads((host_dir / "manifest.json").read_text())["kernels"]]


def test_publish_deletes_only_what_it_wrote(tmp_path):
    nas, root = tmp_path / "nas", tmp_path / "root"
    config = dir_config(nas, keep=1)
    host = nas / BOX_MAC_DIR
    kept = user_files(host)
    (host / ".upload.abc123").write_bytes(b"whose?")  # no manifest yet: not ours to know
    for n in (50, 51, 52):  # keep = 1: each publish drops the one before
        k = files(tmp_path, f"6.1.0-{n}-amd64", 1000)
        publish.after_add(
            root=root,
            config=config,
            kver=f"6.1.0-{n}-amd64",
            kernel=k[0],
            initrd=k[1],
            options=OPTIONS,
        )
        assert_nas_ok(host, kept)
        if n == 50:
            assert (host / ".upload.abc123").exists()
    assert published_kvers(host) == ["6.1.0-52-amd64"]
    ours = sorted(p.name for p in host.iterdir() if p.name not in kept)
    assert [n.rsplit("-", 1)[0] for n in ours] == [
        "boot.ipxe",
        "initrd-6.1.0-52-amd64",
        "manifest.json",
        "vmlinuz-6.1.0-52-amd64",
    ]


def test_a_host_directory_that_is_a_symlink_keeps_its_files(tmp_path):
    nas, root, elsewhere = tmp_path / "nas", tmp_path / "root", tmp_path / "elsewhere"
    config = dir_config(nas)
    kept = user_files(elsewhere)
    (nas / BOX_MAC_DIR).symlink_to(elsewhere)
    k = files(tmp_path, "6.1.0-56-amd64", 1000)
    publish.after_add(
        root=root, config=config, kver="6.1.0-56-amd64", kernel=k[0], initrd=k[1], options=OPTIONS
    )
    assert publish.read_state(root)["state"] == "done"
    assert_nas_ok(elsewhere, kept)


@pytest.mark.parametrize("destination", ["mnt/nas/aoeboot", "nowhere/at/all"])
def test_a_destination_not_there_is_pending_never_made(tmp_path, destination):
    """A NAS share not mounted: the publish must not fill the box's own disk, say done, or
    let status say OK."""
    root = tmp_path / "root"
    (tmp_path / "mnt/nas").mkdir(parents=True)  # the mount point, nothing mounted on it
    dest = tmp_path / destination
    config = Config(BootConfig(Target(11, 0, 1), ("52:54:00:12:34:56",)), PublishConfig(str(dest)))
    configuration.save(config, root)
    k = files(tmp_path, "6.1.0-56-amd64", 1000)
    state = publish.after_add(
        root=root, config=config, kver="6.1.0-56-amd64", kernel=k[0], initrd=k[1], options=OPTIONS
    )
    assert not dest.exists(), "made the destination on the box's own disk"
    assert state["state"] == "pending" and publish.read_state(root)["state"] == "pending"
    assert state["error"] is not None
    assert "is not there" in state["error"]
    from aoeboot import status

    rows = [c for c in status.check(root) if c.name == "publish"]
    assert not any(c.level == "OK" and "boot.ipxe" in c.message for c in rows), rows
    assert any(c.level == "FAIL" and "is not there" in c.message for c in rows), rows
    dest.mkdir(parents=True)  # the NAS is back
    out = aoeboot("publish", "--root", str(root))
    assert out.returncode == 0, out.stderr
    assert_consistent(dest / BOX_MAC_DIR)


def test_removing_a_kernel_brings_back_the_newest_still_installed(tmp_path):
    from aoeboot import kernel_install

    nas, root = tmp_path / "nas", tmp_path / "root"
    config = dir_config(nas, keep=2)
    configuration.save(config, root)
    host = nas / BOX_MAC_DIR
    kept = user_files(host)
    for kver in ("6.1", "6.2", "6.3"):
        k = files(tmp_path, kver, 1000)
        publish.after_add(
            root=root, config=config, kver=kver, kernel=k[0], initrd=k[1], options=OPTIONS
        )
    assert published_kvers(host) == ["6.3", "6.2"]
    env = kernel_install.Environment(tmp_path / "boot", "bls", None, None, False)

    done = kernel_install.remove("6.3", tmp_path / "e", env, root)
    assert published_kvers(host) == ["6.2", "6.1"]  # 6.1 is back, as the fallback
    assert done == ["unpublished 6.3; the NAS boots 6.2, 6.1"]
    assert_nas_ok(host, kept)
    assert kernel_install.remove("6.2", tmp_path / "e", env, root) == [
        "unpublished 6.2; the NAS boots 6.1"
    ]
    assert published_kvers(host) == ["6.1"]
    assert kernel_install.remove("6.1", tmp_path / "e", env, root) == [
        "kept 6.1 on the NAS: it is the only kernel the box can boot"
    ]
    assert published_kvers(host) == ["6.1"]
    assert_nas_ok(host, kept)


class Box:
    """A system root, kernel-install's config root and a NAS directory, for running the real
    plugin entry point `aoeboot kernel-install` as kernel-install runs it (layout other: no
    entry to write, and an initramfs given that has what AoE needs: no dracut run)."""

    def __init__(self, tmp: Path, destination: Path, keep: int = 2) -> None:
        require_programs("cpio")
        self.tmp, self.root, self.conf = tmp, tmp / "root", tmp / "conf"
        self.conf.mkdir()
        self.host = destination / BOX_MAC_DIR
        (self.root / "etc/aoeboot").mkdir(parents=True)  # where `aoeboot publish` reads it too
        (self.root / "etc/aoeboot/aoeboot.conf").write_text(
            "[boot]\ntarget = e11.0p1\ninterfaces = 52:54:00:12:34:56\n"
            f"[publish]\ndestination = {destination}\nkeep = {keep}\n"
        )
        (self.conf / "cmdline").write_text("ro quiet\n")
        self.env = {
            **os.environ,
            "KERNEL_INSTALL_CONF_ROOT": str(self.conf),
            "KERNEL_INSTALL_LAYOUT": "other",
            "KERNEL_INSTALL_BOOT_ROOT": str(tmp / "boot"),
            "KERNEL_INSTALL_VERBOSE": "1",
            "AOEBOOT_ROOT": str(self.root),
            "PYTHONPATH": str(REPO),
        }

    def kernel(self, kver: str, size: int = 2_000_000) -> tuple[Path, Path]:
        """A stand-in kernel, and an initramfs holding (names of) the aoe driver and our module."""
        made = self.tmp / f"made-{kver}"
        (made / "usr/lib/modules" / kver).mkdir(parents=True)
        (made / "usr/lib/modules" / kver / "aoe.ko").write_bytes(os.urandom(size))
        (made / "parse-aoe.sh").write_text("#!/bin/sh\n")
        initrd = self.tmp / f"initrd-{kver}.img"
        subprocess.run(
            ["cpio", "-o", "-H", "newc", "--quiet", "-O", str(initrd)],
            cwd=made,
            input=f"usr/lib/modules/{kver}/aoe.ko\nparse-aoe.sh\n",
            text=True,
            check=True,
        )
        kernel = self.tmp / f"vmlinuz-{kver}"
        kernel.write_bytes(os.urandom(size // 2))
        return kernel, initrd

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "aoeboot", "kernel-install", *args]

    def add(self, kver: str) -> subprocess.Popen[str]:
        kernel, initrd = self.kernel(kver)
        return subprocess.Popen(
            self.argv("add", kver, str(self.tmp / "entry"), str(kernel), str(initrd)),
            env=self.env,
            cwd=REPO,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*args), env=self.env, cwd=REPO, text=True, capture_output=True, timeout=120
        )

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = json.loads((self.root / "var/lib/aoeboot/publish.json").read_text())
        return state


def test_two_kernel_installs_at_once_never_lose_a_kernel(tmp_path):
    """Two `kernel-install add` into one NAS directory, in real parallel processes, round after
    round: each round's two kernels are the newest, so boot.ipxe must boot exactly those two."""
    nas = tmp_path / "nas"
    nas.mkdir()
    box = Box(tmp_path, nas, keep=2)
    kept = user_files(box.host)
    for round_ in range(21):
        kvers = [f"6.{round_ + 1}.{n}" for n in (1, 2)]
        procs = [box.add(kver) for kver in kvers]
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
        assert_nas_ok(box.host, kept)
        assert published_kvers(box.host) == kvers[::-1], f"round {round_}"
        state = box.state()
        assert state["state"] == "done" and state["kernels"] == kvers[::-1], state


def test_the_plugin_says_published_only_when_it_was(tmp_path):
    """A NAS that is away: the plugin says pending (not "published"), and a remove says pending
    too (not "unpublished"); once it is back, `aoeboot publish` completes both."""
    nas = tmp_path / "nas"  # not there yet: its share not mounted
    box = Box(tmp_path, nas, keep=2)
    for kver in ("6.1", "6.2"):
        proc = box.add(kver)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        lines = out.splitlines()
        assert not any(line.startswith("published") for line in lines), out
        assert any(line.startswith(f"publishing {kver} is pending") for line in lines), out
        assert box.state()["state"] == "pending"
    removed = box.run("remove", "6.2", str(tmp_path / "entry"))
    assert removed.returncode == 0, removed.stderr
    assert "unpublished" not in removed.stdout
    assert "unpublishing 6.2 is pending" in removed.stdout, removed.stdout
    nas.mkdir()
    done = aoeboot("publish", "--root", str(box.root))
    assert done.returncode == 0, done.stderr
    assert published_kvers(box.host) == ["6.1"]
    assert box.state()["state"] == "done"
    proc = box.add("6.3")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "published 6.3; the NAS boots 6.3, 6.1" in out.splitlines(), out


def test_sigkill_of_kernel_install_leaves_it_pending_and_nothing_behind(tmp_path):
    """`kernel-install add` killed at random points: what it began is recorded as pending,
    `aoeboot publish` completes it, and no temporary file stays on the NAS or on the box."""
    nas = tmp_path / "nas"
    nas.mkdir()
    box = Box(tmp_path, nas, keep=2)
    kept = user_files(box.host)
    rng = random.Random(7)
    lengths = []
    for run in range(3):
        began = time.monotonic()
        proc = box.add(f"6.0.{run}")
        proc.communicate(timeout=120)
        assert proc.returncode == 0
        lengths.append(time.monotonic() - began)
    whole = min(lengths)
    kills = 0
    for run in range(1, 31):
        kver = f"6.{run}.0"
        proc = box.add(kver)
        time.sleep(rng.uniform(whole * 0.3, whole))  # the first third is Python starting
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.communicate()
        assert_nas_ok(box.host, kept)
        on_nas = [p.name for p in box.host.iterdir() if kver in p.name or p.name.startswith(".")]
        kept_dir = box.root / "var/lib/aoeboot/initrd"
        on_box = [p.name for p in kept_dir.iterdir()] if kept_dir.is_dir() else []
        began = bool(on_nas) or any(kver in n or n.startswith(".") for n in on_box)
        state = box.state()
        recorded = {p["kver"] for p in state["pending"]} | set(state["kernels"])
        assert not began or kver in recorded, (run, on_nas, on_box, state)
        done = aoeboot("publish", "--root", str(box.root))
        assert done.returncode == 0, done.stderr
        assert_nas_ok(box.host, kept)
        if began:
            assert published_kvers(box.host)[0] == kver
        assert not [p.name for p in box.host.iterdir() if p.name.startswith(".")]
        assert not [p.name for p in kept_dir.iterdir() if p.name.startswith(".")]
    assert kills >= 15, f"only {kills} of 30 kernel installs were cut short"


DAMAGED_STATES = [
    ("{not json", "Expecting property name"),
    ('["a list"]', "not a JSON object"),
    ('{"pending": [{"action": "add", "kver": "6.0"}]}', "pending entry 1: no kernel path"),
    (
        '{"pending": [{"action": "add", "kver": "6.0", "kernel": "/k", "initrd": "/i", '
        '"options": "ro"}]}',
        "pending entry 1: options is not a list of strings",
    ),
    ('{"pending": [{"kver": "6.0"}]}', "pending entry 1: action None is neither"),
    ('{"pending": [{"action": "remove"}]}', "pending entry 1: kver None is not a kernel"),
    ('{"pending": ["add 6.0"]}', "pending entry 1: not an object"),
    ('{"pending": {"action": "remove"}}', "pending is not a list"),
]


@pytest.mark.parametrize("text, said", DAMAGED_STATES)
def test_a_damaged_state_file_never_stops_publishing(tmp_path, text, said):
    """Hand-edited or corrupt publish.json: one line naming it and what is wrong, never a
    traceback; the kernel install still publishes; `aoeboot publish` sets it aside, writes it
    anew, and says so with exit 2 (what it had pending is lost)."""
    nas, root = tmp_path / "nas", tmp_path / "root"
    config = dir_config(nas)
    configuration.save(config, root)
    state_file = root / "var/lib/aoeboot/publish.json"
    state_file.parent.mkdir(parents=True)
    state_file.write_text(text)
    out = aoeboot("publish", "--root", str(root))
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert out.stderr.startswith(f"aoeboot: cannot read {state_file}: ") and said in out.stderr
    assert f"set it aside as {state_file}.damaged" in out.stderr
    assert (state_file.parent / "publish.json.damaged").read_text() == text
    assert publish.read_state(root)["state"] == "done"
    assert aoeboot("publish", "--root", str(root)).returncode == 0

    state_file.write_text(text)
    k = files(tmp_path, "6.1.0-56-amd64", 1000)
    state = publish.after_add(
        root=root, config=config, kver="6.1.0-56-amd64", kernel=k[0], initrd=k[1], options=OPTIONS
    )
    assert state["state"] == "done" and publish.read_state(root)["kernels"] == ["6.1.0-56-amd64"]
    assert_consistent(nas / BOX_MAC_DIR)


def box_root(tmp_path: Path, name: str, nic_mac: str | None) -> Path:
    """A box without [boot] interfaces whose aoe driver reaches e11.0 through eth0."""
    root = tmp_path / name
    if nic_mac is not None:
        (root / "sys/class/net/eth0").mkdir(parents=True)
        (root / "sys/class/net/eth0/address").write_text(nic_mac + "\n")
        (root / "sys/block/etherd!e11.0").mkdir(parents=True)
        for attr, value in (("state", "up"), ("netif", "eth0"), ("mac", "5254001234aa")):
            (root / "sys/block/etherd!e11.0" / attr).write_text(value + "\n")
    return root


def test_one_rule_names_the_nas_directory_never_the_host_name(tmp_path):
    """Two boxes called alike, without --iface: each publishes to the directory of its own boot
    MAC, the one `nas-config --mac` points iPXE at; a box whose MAC cannot be told publishes
    nowhere (pending), never into a directory named after its host name."""
    nas = tmp_path / "nas"
    nas.mkdir()
    config = Config(BootConfig(Target(11, 0, 1)), PublishConfig(str(nas)))
    for name, nic in (("box1", "52:54:00:00:00:01"), ("box2", "52:54:00:00:00:02")):
        root = box_root(tmp_path, name, nic)
        k = files(tmp_path, f"6.1.0-{name[-1]}-amd64", 1000)
        publish.after_add(
            root=root,
            config=config,
            kver=f"6.1.0-{name[-1]}-amd64",
            kernel=k[0],
            initrd=k[1],
            options=OPTIONS,
        )
        assert publish.read_state(root)["state"] == "done"
        fragment = aoeboot("nas-config", "--mac", nic, "--target", "e11.0p1")
        assert fragment.returncode == 0, fragment.stderr
        directory = nic.replace(":", "-")
        assert f'"{directory}/boot.ipxe"' in fragment.stdout
        assert published_kvers(nas / directory) == [f"6.1.0-{name[-1]}-amd64"]
    assert sorted(p.name for p in nas.iterdir()) == ["52-54-00-00-00-01", "52-54-00-00-00-02"]

    lost = box_root(tmp_path, "box3", None)
    k = files(tmp_path, "6.1.0-3-amd64", 1000)
    publish.after_add(
        root=lost, config=config, kver="6.1.0-3-amd64", kernel=k[0], initrd=k[1], options=OPTIONS
    )
    state = publish.read_state(lost)
    assert state["state"] == "pending"
    assert state["error"] is not None
    assert "cannot tell the MAC of the NIC this box boots from" in state["error"]
    assert sorted(p.name for p in nas.iterdir()) == ["52-54-00-00-00-01", "52-54-00-00-00-02"]


def test_a_uki_is_published_alone_never_as_its_own_initrd(tmp_path):
    """A unified kernel image carries its initrd (and kernel-install passes it as the kernel):
    the NAS gets it once, as the kernel, and the script boots it with no initrd line."""
    require_programs("objcopy")
    stub = Path("/usr/lib/systemd/boot/efi/linuxx64.efi.stub")
    if not stub.exists():
        require_programs("linuxx64.efi.stub (systemd-boot-efi)")
    nas = tmp_path / "nas"
    nas.mkdir()
    box = Box(tmp_path, nas)
    _, initrd = box.kernel("6.5.0", size=100_000)
    uki = tmp_path / "uki.efi"
    subprocess.run(
        [
            "objcopy",
            "--add-section",
            f".initrd={initrd}",
            "--change-section-vma",
            ".initrd=0x3000000",
            str(stub),
            str(uki),
        ],
        check=True,
        capture_output=True,
    )
    env = {**box.env, "KERNEL_INSTALL_IMAGE_TYPE": "uki", "KERNEL_INSTALL_LAYOUT": "uki"}
    out = subprocess.run(
        box.argv("add", "6.5.0", str(tmp_path / "entry"), str(uki)),
        env=env,
        cwd=REPO,
        text=True,
        capture_output=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "published 6.5.0; the NAS boots 6.5.0" in out.stdout.splitlines(), out.stdout
    (entry,) = json.loads((box.host / "manifest.json").read_text())["kernels"]
    assert entry["kernel_sha256"] == sha256(uki) and entry["initrd"] is None
    assert sorted(p.name.rsplit("-", 1)[0] for p in box.host.iterdir()) == [
        "boot.ipxe",
        "manifest.json",
        "vmlinuz-6.5.0",
    ]  # uploaded once, and no initrd
    script = (box.host / "boot.ipxe").read_text()
    assert "initrd" not in script, script
    assert assert_consistent(box.host) == [entry["kernel"]]


def test_an_initrd_copy_is_kept_only_when_the_initrd_does_not_last(tmp_path):
    """The copy in /var/lib/aoeboot/initrd is what a pending publish and a later re-publish
    read when kernel-install's staging area is gone; an initrd in the boot root stays while
    its kernel does, and needs none."""
    nas = tmp_path / "nas"
    nas.mkdir()
    box = Box(tmp_path, nas)
    kept_dir = box.root / "var/lib/aoeboot/initrd"
    kernel, initrd = box.kernel("6.1")
    in_boot = tmp_path / "boot" / "initrd-6.1.img"
    in_boot.parent.mkdir()
    initrd.rename(in_boot)
    out = box.run("add", "6.1", str(tmp_path / "entry"), str(kernel), str(in_boot))
    assert out.returncode == 0, out.stderr
    assert not (kept_dir / "initrd-6.1").exists(), "a copy of an initrd that stays"
    assert box.state()["installed"]["6.1"]["initrd"] == str(in_boot)
    proc = box.add("6.2")  # its initrd in a temporary directory, as a staging area is
    proc.communicate(timeout=120)
    assert proc.returncode == 0
    assert (kept_dir / "initrd-6.2").is_file()
    assert box.run("remove", "6.2", str(tmp_path / "entry")).returncode == 0
    assert not (kept_dir / "initrd-6.2").exists()
    assert published_kvers(box.host) == ["6.1"]
    assert_consistent(box.host)


def test_removing_while_the_nas_is_away_is_pending_never_unpublished(tmp_path):
    nas = tmp_path / "nas"
    nas.mkdir()
    box = Box(tmp_path, nas)
    kept = user_files(box.host)
    proc = box.add("6.1")
    proc.communicate(timeout=120)
    assert proc.returncode == 0
    nas.rename(tmp_path / "nas.away")  # the share unmounted
    removed = box.run("remove", "6.1", str(tmp_path / "entry"))
    assert removed.returncode == 0, removed.stderr
    assert "unpublishing 6.1 is pending" in removed.stdout, removed.stdout
    assert box.state()["state"] == "pending"
    (tmp_path / "nas.away").rename(nas)
    done = aoeboot("publish", "--root", str(box.root))
    assert done.returncode == 0, done.stderr
    assert published_kvers(box.host) == ["6.1"]  # the last kernel stays
    assert_nas_ok(box.host, kept)
