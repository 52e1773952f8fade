"""The NAS's DHCP as Fedora now runs it: the real kea-dhcp4 on an interface of the test's
namespace, its configuration a subnet plus what `aoeboot nas-config --format kea` printed."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from aoelab.dnsmasq import NAS_IP
from aoelab.netns import Namespace

SUBNET = "10.77.0.0/24"
POOL = "10.77.0.50 - 10.77.0.99"


def config(
    iface: str,
    printed: str,
    log: Path,
    reservations: Sequence[dict[str, object]] = (),
    shared_network: bool = False,
) -> str:
    """A whole kea-dhcp4.conf: the printed header as it is (Kea has to take its comments), then
    its JSON merged into "Dhcp4" next to one subnet (with `reservations`) on `iface`, inside a
    shared network if asked."""
    lines = printed.splitlines()
    header = [line for line in lines if line.startswith("//")]
    printed_json = json.loads("\n".join(line for line in lines if not line.startswith("//")))
    subnets = [
        {"id": 1, "subnet": SUBNET, "pools": [{"pool": POOL}], "reservations": list(reservations)}
    ]
    layout: dict[str, object] = {"subnet4": subnets}
    if shared_network:
        layout = {"shared-networks": [{"name": "lan", "interface": iface, "subnet4": subnets}]}
    dhcp4 = {
        "interfaces-config": {"interfaces": [iface]},
        "lease-database": {"type": "memfile", "persist": False},
        **layout,
        "loggers": [
            {
                "name": "kea-dhcp4",
                "severity": "DEBUG",
                "debuglevel": 15,
                "output_options": [{"output": str(log)}],
            }
        ],
        **printed_json,
    }
    return "\n".join([*header, json.dumps({"Dhcp4": dhcp4}, indent=2), ""])


def environment(work: Path) -> dict[str, str]:
    # its pid file and its logger's lock file go to the test's directory, not /run
    return {**os.environ, "KEA_PIDFILE_DIR": str(work), "KEA_LOCKFILE_DIR": str(work)}


def check(ns: Namespace, conf: Path, work: Path) -> subprocess.CompletedProcess[str]:
    """`kea-dhcp4 -t`: Kea's own verdict on the file, opening no socket (inside `ns`, where
    the interfaces it names are)."""
    return ns.run(["kea-dhcp4", "-t", str(conf)], env=environment(work), timeout=60, check=False)


class Kea:
    """kea-dhcp4 serving SUBNET on `iface` of `ns` (given NAS_IP there), until stopped."""

    def __init__(
        self,
        ns: Namespace,
        iface: str,
        printed: str,
        work: Path,
        reservations: Sequence[dict[str, object]] = (),
        shared_network: bool = False,
    ) -> None:
        ns.run(["ip", "addr", "replace", f"{NAS_IP}/24", "dev", iface])
        self.log = work / "kea-dhcp4.log"
        self.conf = work / "kea-dhcp4.conf"
        self.conf.write_text(config(iface, printed, self.log, reservations, shared_network))
        checked = check(ns, self.conf, work)
        if checked.returncode != 0:
            raise RuntimeError(
                f"kea-dhcp4 -t refused {self.conf}: {checked.stdout}{checked.stderr}"
            )
        self.proc = ns.popen(
            ["kea-dhcp4", "-c", str(self.conf)],
            env=environment(work),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 20
        while "DHCP4_STARTED" not in self.log_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                err = self.proc.stderr.read().decode()  # type: ignore[union-attr]
                raise RuntimeError(f"kea-dhcp4 did not start: {err}{self.log_text()[-2000:]}")
            time.sleep(0.1)

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def __enter__(self) -> Kea:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
