"""`aoeboot discover`: the AoE targets this machine can see."""

from __future__ import annotations

import json
import math
import os
import sys
from typing import Any

import click

from aoeboot.config import parse_interface
from aoeboot.errors import EXIT_NOTHING, AoebootError

WAIT_TIMEOUT = 60.0  # --wait: what a NAS still booting, or a slow link, may take
RETRIGGER = 2.0


@click.command()
@click.option(
    "-i",
    "--iface",
    "interfaces",
    multiple=True,
    metavar="IF",
    help="Interface (name or MAC) to use; repeatable. Default: every Ethernet interface "
    "that is up.",
)
@click.option(
    "-t",
    "--timeout",
    type=click.FloatRange(0.05, 600),
    default=None,
    help="Seconds to wait for answers [userspace 0.3, kernel 5].",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (see below) instead of a table.")
@click.option(
    "--userspace",
    "mode",
    flag_value="userspace",
    help="Probe with raw Ethernet frames (no aoe driver needed).",
)
@click.option(
    "--kernel",
    "mode",
    flag_value="kernel",
    help="Use the aoe driver: load it, trigger discovery, list /sys/block/etherd!*.",
)
@click.option(
    "--wait",
    is_flag=True,
    help="With the aoe driver, until a target is there: discovery again every "
    f"{RETRIGGER:g} s, up to --timeout (default {WAIT_TIMEOUT:g} s).",
)
def discover(
    interfaces: tuple[str, ...],
    timeout: float | None,
    as_json: bool,
    mode: str | None,
    wait: bool,
) -> None:
    """Find the AoE targets the network offers.

    By default the aoe driver is used when it is loaded or can be loaded, else a userspace probe.
    In the installer's shell, `discover --wait` makes the disks appear under /dev/etherd for
    partitioning (no more modprobe, echo > /dev/etherd/discover, and looking again).
    Exit 0 when targets were found, 1 when none, 2 when discovery cannot work here.

    JSON: a list of objects with the keys target ("e11.0"), shelf, slot, size_bytes (null if
    unknown), mac (the server's), interface, and per mode:
    userspace (one per target, interface and server): buffer_count, firmware_version,
    config_string, model;
    kernel (one per target): state, firmware_version, payload, partitions (["e11.0p1", ...]),
    paths (every way to the target: [{"interface": "ens3", "mac": SERVER}, ...]; the aoe driver
    spreads I/O over them all; interface then lists them comma-separated).
    """
    if timeout is not None and not math.isfinite(timeout):  # NaN passes click's range check
        raise AoebootError(f"--timeout {timeout}: not a number of seconds")
    wanted = [parse_interface(name) for name in interfaces]
    if os.geteuid() != 0:
        raise AoebootError("discover needs root (raw sockets or the aoe driver)")
    from aoeboot import netif

    names = netif.resolve(wanted)  # MACs to names; each must exist and be up
    if wait and mode == "userspace":
        raise AoebootError(
            "--wait makes the disks appear through the aoe driver", hint="drop --userspace"
        )
    mode = "kernel" if wait else mode or ("kernel" if _driver_usable() else "userspace")
    if mode == "kernel":
        rows = _kernel(
            names, WAIT_TIMEOUT if wait and timeout is None else timeout, RETRIGGER if wait else 0.0
        )
    else:
        rows = _userspace(names, timeout)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        _print_table(rows, mode)
    if not rows:
        if not as_json:
            click.echo("no AoE targets found", err=True)
        sys.exit(EXIT_NOTHING)


def _driver_usable() -> bool:
    from aoeboot import driver

    return driver.is_loaded() or driver.available(os.uname().release)


def _progress(what: str, seconds: float) -> None:
    if sys.stderr.isatty():
        click.echo(f"aoeboot: {what} (up to {seconds:g} s)...", err=True)


def _userspace(interfaces: list[str], timeout: float | None) -> list[dict[str, Any]]:
    from aoeboot.probe import probe

    window = timeout if timeout is not None else 0.3
    _progress("probing for AoE targets", window)
    return [
        {
            "target": found.target.name,
            "shelf": found.target.shelf,
            "slot": found.target.slot,
            "size_bytes": found.size_bytes,
            "mac": found.mac,
            "interface": found.interface,
            "buffer_count": found.buffer_count,
            "firmware_version": f"{found.firmware_version:#06x}",
            "config_string": found.config_string,
            "model": found.model,
        }
        for found in probe(interfaces, window)
    ]


def _kernel(interfaces: list[str], timeout: float | None, retrigger: float) -> list[dict[str, Any]]:
    from aoeboot import driver

    wait = timeout if timeout is not None else 5.0
    _progress("waiting for the aoe driver to find targets", wait)
    return [
        {
            "target": t.target.name,
            "shelf": t.target.shelf,
            "slot": t.target.slot,
            "size_bytes": t.size_bytes,
            "mac": t.mac,
            "interface": t.netif,
            "state": t.state,
            "firmware_version": t.firmware_version,
            "payload": t.payload,
            "partitions": [p.name for p in t.partitions],
            "paths": [{"interface": i, "mac": server} for i, server in t.paths],
        }
        for t in driver.discover(interfaces, wait, retrigger=retrigger)
    ]


def _human(size: Any) -> str:
    if size is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if size < 1024 or unit == "PiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{size} B"
        size /= 1024
    return str(size)


def _servers(row: dict[str, Any]) -> str:
    """Every server MAC answering for the target (the driver knows them all), else the one."""
    servers = list(dict.fromkeys(p["mac"] for p in row.get("paths", ())))
    return ",".join(servers) or str(row["mac"])


def _print_table(rows: list[dict[str, Any]], mode: str) -> None:
    extra = "model" if mode == "userspace" else "state"
    header = ("TARGET", "SIZE", "INTERFACE", "SERVER MAC", extra.upper())
    table = [header] + [
        (r["target"], _human(r["size_bytes"]), r["interface"], _servers(r), str(r.get(extra) or ""))
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
