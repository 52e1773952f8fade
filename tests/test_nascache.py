"""The lab NAS's volatile write cache (aoelab/files/nascache.c): a writer loses what was not
written back when it is killed, as a NAS loses its page cache when the power goes, and loses
nothing it wrote with O_SYNC or before a clean stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from aoelab.vblade import nascache_library
from tests.helpers import require_programs

SECTORS = 64
# a child writes sectors 0..SECTORS-1 (sector n filled with byte n + 1), reads them back through
# the cache, prints what it read, then ends as argv[2] says
WRITER = """
import os, signal, sys
path, end, sync, sectors = sys.argv[1], sys.argv[2], sys.argv[3] == "sync", int(sys.argv[4])
fd = os.open(path, os.O_RDWR | (os.O_SYNC if sync else 0))
for n in range(sectors):
    os.pwrite(fd, bytes([n + 1]) * 512, n * 512)
back = os.pread(fd, sectors * 512, 0)
print(all(back[n * 512:(n + 1) * 512] == bytes([n + 1]) * 512 for n in range(sectors)),
      flush=True)
os.kill(os.getpid(), signal.SIGKILL if end == "cut" else signal.SIGTERM)
"""


def run_writer(image: Path, end: str, sync: bool, expire: str = "30") -> tuple[str, int]:
    env = {
        **os.environ,
        "LD_PRELOAD": str(nascache_library()),
        "AOELAB_NASCACHE_FILE": str(image),
        "AOELAB_NASCACHE_EXPIRE": expire,
    }
    done = subprocess.run(
        [sys.executable, "-c", WRITER, str(image), end, "sync" if sync else "cache", str(SECTORS)],
        env=env,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip(), done.returncode


def sectors_on_disk(image: Path) -> int:
    data = image.read_bytes()
    return sum(data[n * 512 : (n + 1) * 512] == bytes([n + 1]) * 512 for n in range(SECTORS))


@pytest.fixture
def image(tmp_path: Path) -> Path:
    require_programs("cc")
    path = tmp_path / "disk.img"
    path.write_bytes(bytes(SECTORS * 512))
    return path


def test_a_power_cut_loses_what_the_cache_had_not_written_back(image):
    read_back, code = run_writer(image, "cut", sync=False)
    assert read_back == "True"  # reads were served from the cache
    assert code == -signal.SIGKILL
    assert sectors_on_disk(image) == 0


def test_o_sync_writes_survive_the_cut(image):
    read_back, code = run_writer(image, "cut", sync=True)
    assert (read_back, code) == ("True", -signal.SIGKILL)
    assert sectors_on_disk(image) == SECTORS


def test_a_clean_stop_writes_everything_back(image):
    read_back, code = run_writer(image, "term", sync=False)
    assert (read_back, code) == ("True", 0)
    assert sectors_on_disk(image) == SECTORS


def test_expired_sectors_are_written_back_before_the_cut(image):
    # expiry 0: the first request's scan finds its sectors due and writes them back in batches
    read_back, code = run_writer(image, "cut", sync=False, expire="0")
    assert (read_back, code) == ("True", -signal.SIGKILL)
    assert 0 < sectors_on_disk(image) <= SECTORS


CHURN = """
import os, random, signal, sys, time
path, size = sys.argv[1], int(sys.argv[2])
rng, model = random.Random(7), {}
fd = os.open(path, os.O_RDWR)
until = time.monotonic() + 2.5  # expiry 0.5 s: several scans and writebacks on the way
while time.monotonic() < until:
    start, count = rng.randrange(size - 8), rng.randint(1, 8)
    if rng.random() < 0.6:
        data = rng.randbytes(count * 512)
        os.pwrite(fd, data, start * 512)
        for n in range(count):
            model[start + n] = data[n * 512:(n + 1) * 512]
    else:
        got = os.pread(fd, count * 512, start * 512)
        for n in range(count):
            if got[n * 512:(n + 1) * 512] != model.get(start + n, bytes(512)):
                print("wrong read of sector", start + n, flush=True)
                sys.exit(1)
print(" ".join(f"{k}:{v.hex()}" for k, v in model.items()), flush=True)
os.kill(os.getpid(), signal.SIGTERM)
"""


def test_reads_see_every_write_through_writebacks_and_a_clean_stop_keeps_them(tmp_path):
    require_programs("cc")
    size = 4096
    image = tmp_path / "churn.img"
    image.write_bytes(bytes(size * 512))
    env = {
        **os.environ,
        "LD_PRELOAD": str(nascache_library()),
        "AOELAB_NASCACHE_FILE": str(image),
        "AOELAB_NASCACHE_EXPIRE": "0.5",
    }
    done = subprocess.run(
        [sys.executable, "-c", CHURN, str(image), str(size)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-500:] + done.stderr[-500:]
    model = {int(k): bytes.fromhex(v) for k, v in (pair.split(":") for pair in done.stdout.split())}
    assert len(model) > 1000
    data = image.read_bytes()
    assert all(data[n * 512 : (n + 1) * 512] == model.get(n, bytes(512)) for n in range(size))
