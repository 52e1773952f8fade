"""Publishing kernels to the NAS that netboots this box, and keeping its iPXE script right.

Order of a publish, so that the box can never fetch a script naming a missing or partial file:
1. upload kernel and initramfs under content-addressed names (`vmlinuz-KVER-SHA12`), each
   written under a temporary name and renamed when complete; files already there are skipped;
2. switch boot.ipxe (temp + rename), then write manifest.json: what is published, with the
   script's hash, so an unchanged manifest means nothing at all needs writing;
3. only then delete files no kernel in the manifest names.

The state of the last publish lives in /var/lib/aoeboot/publish.json:
    {"state": "done" | "pending", "destination": URL, "host": NAME,
     "kernels": [KVER, ...]            # what boot.ipxe boots, newest first
     "pending": [{"action": "add" | "remove", "kver": KVER, "kernel": PATH, "initrd": PATH,
                  "options": [OPTION, ...]}, ...],
     "error": TEXT | null, "updated": ISO-8601 time}
A failed publish (NAS unreachable, disk full) never fails the kernel install: it is recorded as
pending and `aoeboot publish` (by hand, or the aoeboot-publish.timer) completes it.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import socket
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from aoeboot import ipxe, mac, netif, paths
from aoeboot.cmdline import Cmdline
from aoeboot.config import Config
from aoeboot.errors import AoebootError
from aoeboot.fsutil import atomic_write, safe_name, under
from aoeboot.kver import sort_key
from aoeboot.target import Target
from aoeboot.transport import Destination, open_destination, sha256

log = logging.getLogger(__name__)

SCRIPT = "boot.ipxe"
MANIFEST = "manifest.json"


def host_name(config: Config, root: Path = Path("/")) -> str:
    """The per-host directory on the NAS: the boot MAC as iPXE writes it (${netX/mac:hexhyp}),
    else the host name; or what the config says."""
    if config.publish.host != "auto":
        return config.publish.host
    for interface in config.boot.interfaces:
        found = (interface if mac.is_mac(interface)
                 else netif.address(interface, under(root, netif.SYS_NET)))
        if found:
            return mac.hexhyp(found)
    return safe_name(socket.gethostname().split(".")[0], "host name")


def destination(config: Config, root: Path = Path("/")) -> Destination:
    if not config.publish.destination:
        raise AoebootError("no publish destination configured",
                           hint=f"set [publish] destination in {paths.CONFIG}")
    return open_destination(config.publish.destination, host_name(config, root),
                            config.publish.ssh_identity, config.publish.ssh_known_hosts)


def _target(config: Config, options: Sequence[str]) -> Target:
    if config.boot.target:
        return config.boot.target
    root_option = Cmdline(tuple(options)).get("root")
    if root_option:
        return Target.parse(root_option)
    raise AoebootError("cannot tell the AoE target for sanboot", hint="set [boot] target")


def _manifest(dest: Destination) -> tuple[list[dict[str, Any]], str | None]:
    """The kernels the NAS's manifest lists, and the manifest's text (None: there is none)."""
    text = dest.read_text(MANIFEST)
    if text is None:
        return [], None
    try:
        return list(json.loads(text)["kernels"]), text
    except (ValueError, KeyError, TypeError) as err:
        raise AoebootError(f"the NAS's {MANIFEST} is damaged: {err}") from None


def _switch(dest: Destination, config: Config, host: str, kernels: list[dict[str, Any]],
            target: Target, previous: str | None) -> None:
    kernels.sort(key=lambda k: sort_key(k["kver"]), reverse=True)
    del kernels[config.publish.keep:]
    script = ipxe.render(host, [ipxe.Published(k["kver"], k["kernel"], k["initrd"], k["options"])
                                for k in kernels], target, config.publish.url)
    script_sha256 = hashlib.sha256(script.encode()).hexdigest()
    manifest = json.dumps({"kernels": kernels, "script_sha256": script_sha256}, indent=2) + "\n"
    # The manifest, written last, records the script too: if it is unchanged, so is all the
    # rest, and an unchanged re-publish sends nothing.
    if manifest != previous:
        dest.write_text(SCRIPT, script)
        dest.write_text(MANIFEST, manifest)
    named = {SCRIPT, MANIFEST} | {k[f] for k in kernels for f in ("kernel", "initrd")}
    dest.remove(sorted(set(dest.listing()) - named))


def publish_kernel(dest: Destination, config: Config, host: str, kver: str, kernel: Path,
                   initrd: Path, options: Sequence[str]) -> list[str]:
    """Upload one kernel and switch the script to it; return the kernels the script boots."""
    safe_name(kver, "kernel version")
    present = dest.listing()

    def place(local: Path, prefix: str) -> tuple[str, str]:
        stem, size = f"{prefix}-{kver}", local.stat().st_size
        # Only a file of the same kernel and size may already be this one: hash to know;
        # otherwise upload, hashing on the way (one pass over the data).
        same_size = {n for n, s in present.items() if n.startswith(stem + "-") and s == size}
        digest = sha256(local) if same_size else ""
        if f"{stem}-{digest[:12]}" in same_size:
            return f"{stem}-{digest[:12]}", digest
        return dest.upload(local, stem)

    # Kernel and initramfs side by side: their hashing and flushing overlap.
    with ThreadPoolExecutor(max_workers=2) as pool:
        placed = {field: pool.submit(place, local, prefix) for field, local, prefix in
                  (("kernel", kernel, "vmlinuz"), ("initrd", initrd, "initrd"))}
        entry = {"kver": kver, "options": " ".join(options)}
        for field, future in placed.items():
            entry[field], entry[f"{field}_sha256"] = future.result()
    listed, previous = _manifest(dest)
    kernels = [k for k in listed if k["kver"] != kver] + [entry]
    _switch(dest, config, host, kernels, _target(config, options), previous)
    return [k["kver"] for k in kernels]


def unpublish_kernel(dest: Destination, config: Config, host: str, kver: str) -> list[str]:
    kernels, previous = _manifest(dest)
    remaining = [k for k in kernels if k["kver"] != kver]
    if len(remaining) == len(kernels):
        return [k["kver"] for k in kernels]
    if not remaining:
        log.warning("not removing %s from the NAS: it is the only kernel the box can boot", kver)
        return [k["kver"] for k in kernels]
    options = remaining[0]["options"].split()
    _switch(dest, config, host, remaining, _target(config, options), previous)
    return [k["kver"] for k in remaining]


# ---- state and the kernel-install hooks ----

def _state_path(root: Path) -> Path:
    return under(root, paths.PUBLISH_STATE)


def read_state(root: Path = Path("/")) -> dict[str, Any]:
    path = _state_path(root)
    try:
        return dict(json.loads(path.read_text()))
    except FileNotFoundError:
        return {"state": "done", "pending": [], "kernels": []}
    except (OSError, ValueError) as err:
        raise AoebootError(f"cannot read {path}: {err}") from None


def _write_state(root: Path, state: dict[str, Any]) -> None:
    state["updated"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    state["state"] = "pending" if state.get("pending") else "done"
    atomic_write(_state_path(root), json.dumps(state, indent=2) + "\n")


def _run(root: Path, config: Config, ops: list[dict[str, Any]]) -> dict[str, Any]:
    """Carry out `ops` in order; what fails and all after it stay pending."""
    state = read_state(root)
    state.update(destination=config.publish.destination, host=host_name(config, root), error=None)
    dest = destination(config, root)
    for index, op in enumerate(ops):
        try:
            if op["action"] == "add":
                state["kernels"] = publish_kernel(dest, config, state["host"], op["kver"],
                                                  Path(op["kernel"]), Path(op["initrd"]),
                                                  op["options"])
            else:
                state["kernels"] = unpublish_kernel(dest, config, state["host"], op["kver"])
        except (AoebootError, OSError) as err:
            state["pending"] = ops[index:]
            state["error"] = str(err)
            _write_state(root, state)
            raise AoebootError(f"publishing to {config.publish.destination} "
                               f"failed: {err}") from None
    state["pending"] = []
    _write_state(root, state)
    return state


def _queue(root: Path, config: Config, op: dict[str, Any]) -> None:
    ops = [p for p in read_state(root).get("pending", []) if p.get("kver") != op["kver"]] + [op]
    try:
        _run(root, config, ops)
    except AoebootError as err:
        log.warning("%s; recorded as pending, `aoeboot publish` completes it", err)


def after_add(*, root: Path, config: Config, kver: str, kernel: Path, initrd: Path,
              options: Sequence[str]) -> None:
    """Publish a kernel just installed. Never raises for a NAS failure: records it as pending."""
    # The initrd may sit in kernel-install's staging area, gone after the install: keep a copy.
    kept = under(root, paths.STATE_DIR) / "initrd" / f"initrd-{safe_name(kver, 'kernel version')}"
    kept.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(kept, initrd.read_bytes(), mode=0o600)
    _queue(root, config, {"action": "add", "kver": kver, "kernel": str(kernel), "initrd": str(kept),
                          "options": list(options)})


def after_remove(*, root: Path, config: Config, kver: str) -> None:
    _queue(root, config, {"action": "remove", "kver": kver})
    kept = under(root, paths.STATE_DIR) / "initrd" / f"initrd-{safe_name(kver, 'kernel version')}"
    if kept.exists() and not any(p.get("kver") == kver
                                 for p in read_state(root).get("pending", [])):
        kept.unlink()


def complete_pending(root: Path, config: Config) -> dict[str, Any]:
    """What `aoeboot publish` does: carry out what is pending (raises if the NAS still fails)."""
    return _run(root, config, list(read_state(root).get("pending", [])))
