"""The NAS's DHCP and TFTP: dnsmasq on the tap of the test's namespace, with router
advertisements so iPXE does not wait ~16 s for IPv6 autoconfiguration."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from aoelab.netns import Namespace

NAS_IP = "10.77.0.1"
NAS_IP6 = "fd00:77::1"


class Dnsmasq:
    def __init__(
        self, ns: Namespace, iface: str, tftp_root: Path, fragment: str, work: Path
    ) -> None:
        ns.run(["ip", "addr", "replace", f"{NAS_IP}/24", "dev", iface])
        ns.run(["ip", "-6", "addr", "replace", f"{NAS_IP6}/64", "dev", iface, "nodad"])
        conf = work / "dnsmasq.conf"
        conf.write_text(fragment)
        self.log = work / "dnsmasq.log"
        # leases of 2 min (dnsmasq's least): one can run out within a boot (suspend.NM_ACTIONS)
        argv = [
            "dnsmasq",
            "--keep-in-foreground",
            "--port=0",
            f"--interface={iface}",
            "--bind-interfaces",
            "--dhcp-range=10.77.0.50,10.77.0.99,2m",
            "--dhcp-range=fd00:77::,ra-only",
            "--enable-ra",
            "--enable-tftp",
            f"--tftp-root={tftp_root}",
            f"--conf-file={conf}",
            f"--dhcp-leasefile={work / 'leases'}",
            f"--pid-file={work / 'dnsmasq.pid'}",
            "--log-dhcp",
            f"--log-facility={self.log}",
            "--user=root",
        ]
        self.proc = ns.popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.3)
        if self.proc.poll() is not None:
            raise RuntimeError(f"dnsmasq exited: {self.proc.stderr.read().decode()}")  # type: ignore[union-attr]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=5)

    def __enter__(self) -> Dnsmasq:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
