"""Benchmark discovery: the CLI's cold start, one bare Query Config round trip, and a whole
`aoeboot discover --userspace` against vblade in namespaces made here, measured side by side.

Goals (issue 2): whole discovery < 0.5 s with a 0.3 s answer window; cold start < 150 ms.
Run as root: python -m bench.discover [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aoelab.netns import Namespace, veth_pair
from aoelab.vblade import Vblade, sparse_image
from bench import REPO

# Run by `ip netns exec` in the client namespace: a new interpreter, which has neither our
# sys.path nor, with a python other than the venv's, aoeboot installed.
ROUND_TRIP = """
import socket, sys, time
sys.path.insert(0, {repo!r})
from aoeboot import mac as macs, netif, wire
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(wire.ETH_P_AOE))
sock.bind(("eth0", wire.ETH_P_AOE))
mac = macs.to_bytes(netif.address("eth0"))
times = []
for i in range({runs}):
    start = time.perf_counter()
    sock.send(wire.query_config(mac, 0x42420000 | i))
    while True:
        header = wire.parse_header(sock.recv(9000))
        if header.is_response and header.tag == 0x42420000 | i:
            break
    times.append(time.perf_counter() - start)
    time.sleep(0.05)  # let the other target's answer drain
print(" ".join(str(t) for t in times))
"""


def timed(argv: list[str], runs: int) -> list[float]:
    times: list[float] = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    python = (
        str(REPO / ".venv/bin/python") if (REPO / ".venv/bin/python").exists() else sys.executable
    )
    with tempfile.TemporaryDirectory() as tmp, Namespace() as nas, Namespace() as client:
        veth_pair(nas, "nas0", client, "eth0")
        images = [sparse_image(Path(tmp) / f"d{i}.img", 1 << 30) for i in range(2)]
        with Vblade(nas, 11, 0, "nas0", images[0]), Vblade(nas, 11, 1, "nas0", images[1]):
            cold = timed([python, "-m", "aoeboot", "--help"], args.runs)
            out = client.run([python, "-c", ROUND_TRIP.format(repo=str(REPO), runs=args.runs)])
            round_trip = [float(t) for t in out.stdout.split()]
            whole = timed(
                client.argv(
                    [
                        python,
                        "-m",
                        "aoeboot",
                        "discover",
                        "--userspace",
                        "-i",
                        "eth0",
                        "--timeout",
                        "0.3",
                    ]
                ),
                args.runs,
            )
    rows = [
        ("cold start (aoeboot --help)", cold, 0.150),
        ("bare Query Config round trip", round_trip, None),
        ("aoeboot discover --userspace (0.3 s window)", whole, 0.5),
    ]
    print(f"{'what':46} {'median':>9} {'min':>9} {'max':>9}  goal")
    for name, times, goal in rows:
        verdict = (
            ""
            if goal is None
            else f"< {goal * 1000:.0f} ms: "
            + ("met" if statistics.median(times) < goal else "MISSED")
        )
        print(
            f"{name:46} {statistics.median(times) * 1000:7.1f}ms {min(times) * 1000:7.1f}ms "
            f"{max(times) * 1000:7.1f}ms  {verdict}"
        )
    overhead = statistics.median(whole) - 0.3
    print(
        f"discover beyond its 0.3 s window: {overhead * 1000:.1f} ms "
        f"({statistics.median(whole) / statistics.median(cold):.1f}x the cold start; "
        f"{statistics.median(round_trip) * 1e6:.0f} us per round trip)"
    )


if __name__ == "__main__":
    main()
