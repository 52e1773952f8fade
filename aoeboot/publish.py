"""Publishing kernels to the NAS that netboots this box, and keeping its iPXE script right.

Order of a publish, so that the box can never fetch a script naming a missing or partial file:
1. upload kernel and initramfs under content-addressed names (`vmlinuz-KVER-SHA12`), each
   written under a temporary name and renamed when complete; files already there are skipped;
2. switch boot.ipxe (temp + rename), then write manifest.json: what is published, with the
   script's hash, so an unchanged manifest means nothing at all needs writing;
3. only then delete what this tool wrote and nothing names now: files the previous manifest
   named, and the temporary files of a run that was killed. The directory may hold the user's
   own files; they are never touched.

One run at a time (lock.py): the whole sequence, and the state file, under one lock.
The destination itself is never created: one that is not there is a NAS share not mounted.

The state of the last publish lives in /var/lib/aoeboot/publish.json:
    {"state": "done" | "pending", "destination": URL, "host": NAME,
     "kernels": [KVER, ...]            # what boot.ipxe boots, newest first
     "pending": [{"action": "add" | "remove", "kver": KVER, "kernel": PATH, "initrd": PATH,
                  "options": [OPTION, ...]}, ...],
     "installed": {KVER: {"kver": KVER, "kernel": PATH, "initrd": PATH, "options": [...]}},
     "error": TEXT | null, "updated": ISO-8601 time}
A failed publish (NAS unreachable, disk full) never fails the kernel install: it is recorded as
pending (before it is tried: a kill leaves it pending too) and `aoeboot publish` (by hand, or
the aoeboot-publish.timer) completes it. "installed" is what removing a kernel falls back to:
the newest kernels still installed are published again, each initrd from the copy kept in
/var/lib/aoeboot/initrd when the one kernel-install passed was in its staging area or another
place it does not last (elsewhere, in the boot root or /boot, it stays while the kernel does).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, cast

from aoeboot import driver, ipxe, lock, mac, netif, paths
from aoeboot.cmdline import Cmdline
from aoeboot.config import Config
from aoeboot.errors import AoebootError
from aoeboot.fsutil import atomic_copy, atomic_write, is_safe_name, safe_name, under
from aoeboot.kver import sort_key
from aoeboot.target import Target
from aoeboot.transport import Destination, open_destination, sha256

if TYPE_CHECKING:
    from typing import NotRequired  # 3.11; the annotations are only strings at run time

log = logging.getLogger(__name__)

SCRIPT = "boot.ipxe"
MANIFEST = "manifest.json"


class KernelRecord(TypedDict):
    """A kernel installed on the box, as publish.json keeps it to publish it (again)."""

    kver: str
    kernel: str
    initrd: str | None  # None: a unified kernel image
    options: list[str]


class Operation(TypedDict):
    """A publish not yet done: "add" carries the KernelRecord's fields, "remove" only kver."""

    action: str
    kver: str
    kernel: NotRequired[str]
    initrd: NotRequired[str | None]
    options: NotRequired[list[str]]


class PublishState(TypedDict):
    """publish.json: what is pending, what the NAS boots, and the box's kernels."""

    state: str  # "pending" or "done"
    pending: list[Operation]
    kernels: list[str]  # what the NAS's boot script boots, newest first
    installed: dict[str, KernelRecord]
    updated: NotRequired[str]
    destination: NotRequired[str | None]
    host: NotRequired[str]
    error: NotRequired[str | None]


def host_name(config: Config, root: Path = Path("/")) -> str:
    """The per-host directory on the NAS, by the one rule `nas-config` follows too (its script
    is MAC/boot.ipxe for the first --mac): the boot MAC as iPXE writes it (${mac:hexhyp}); or
    what [publish] host says. Never the host name: two boxes called alike would share, and
    wipe, one directory, which no DHCP fragment names."""
    if config.publish.host != "auto":
        return config.publish.host
    found = boot_mac(config, root)
    if found is None:
        raise AoebootError(
            "cannot tell the MAC of the NIC this box boots from, which names its "
            "directory on the NAS",
            hint="set [boot] interfaces to the MAC given to `aoeboot nas-config "
            "--mac`, or [publish] host",
        )
    return mac.hexhyp(found)


def boot_mac(config: Config, root: Path = Path("/")) -> str | None:
    """The MAC of the first boot interface; without any configured, of the first NIC the aoe
    driver reaches the root disk through."""
    sys_net = under(root, netif.SYS_NET)
    names = list(config.boot.interfaces)
    if not names and config.boot.target:
        disk = config.boot.target.disk
        names = [
            name
            for found in driver.list_targets(root)
            if found.target == disk
            for name in found.netif.split(",")
            if name and name != "none"
        ]
    for interface in names:
        found = interface if mac.is_mac(interface) else netif.address(interface, sys_net)
        if found:
            return mac.normal(found)
    return None


def destination(config: Config, root: Path = Path("/")) -> Destination:
    if not config.publish.destination:
        raise AoebootError(
            "no publish destination configured", hint=f"set [publish] destination in {paths.CONFIG}"
        )
    return open_destination(
        config.publish.destination,
        host_name(config, root),
        config.publish.ssh_identity,
        config.publish.ssh_known_hosts,
    )


def _target(config: Config, options: Sequence[str]) -> Target:
    if config.boot.target:
        return config.boot.target
    root_option = Cmdline(tuple(options)).get("root")
    if root_option:
        return Target.parse(root_option)
    raise AoebootError("cannot tell the AoE target for sanboot", hint="set [boot] target")


def parse_manifest(text: str) -> list[dict[str, Any]]:
    """The kernels a manifest lists, each file name checked; damage is an error."""
    try:
        kernels = [dict(k) for k in json.loads(text)["kernels"]]
        for kernel in kernels:
            for field in ("kver", "kernel", "initrd"):
                if field != "initrd" or kernel[field] is not None:  # a UKI has none
                    safe_name(kernel[field], f"{MANIFEST} {field}")
    except (ValueError, KeyError, TypeError, AoebootError) as err:
        raise AoebootError(f"the NAS's {MANIFEST} is damaged: {err}") from None
    return kernels


def _manifest(dest: Destination) -> tuple[list[dict[str, Any]], str | None]:
    """The kernels the NAS's manifest lists, and the manifest's text (None: there is none)."""
    text = dest.read_text(MANIFEST)
    return ([], None) if text is None else (parse_manifest(text), text)


def unverified(directory: Path, kernels: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The kernels whose published files in `directory` are missing or not what the manifest
    recorded (sha256)."""
    return [
        kernel
        for kernel in kernels
        if not all(
            (directory / kernel[f]).is_file()
            and sha256(directory / kernel[f]) == kernel.get(f"{f}_sha256")
            for f in ("kernel", "initrd")
            if kernel[f] is not None
        )
    ]


def _files_of(kernels: Sequence[dict[str, Any]]) -> set[str]:
    return {k[f] for k in kernels for f in ("kernel", "initrd") if k[f] is not None}


def _stale(
    dest: Destination, listed: list[dict[str, Any]], previous: str | None, named: set[str]
) -> list[str]:
    """What this tool wrote and nothing names any more: the files of the previous manifest, and
    the temporary files of a publish that was killed. Never a file of anyone else's; and in a
    directory with foreign files but no manifest, nothing at all."""
    stale = _files_of(listed) - named
    if previous is not None or not set(dest.listing()) - named:
        stale |= set(dest.leftovers())
    return sorted(stale)


def _switch(
    dest: Destination,
    config: Config,
    host: str,
    kernels: list[dict[str, Any]],
    target: Target,
    listed: list[dict[str, Any]],
    previous: str | None,
) -> None:
    kernels.sort(key=lambda k: sort_key(k["kver"]), reverse=True)
    del kernels[config.publish.keep :]
    script = ipxe.render(
        host,
        [ipxe.Published(k["kver"], k["kernel"], k["initrd"], k["options"]) for k in kernels],
        target,
        config.publish.url,
    )
    script_sha256 = hashlib.sha256(script.encode()).hexdigest()
    manifest = json.dumps({"kernels": kernels, "script_sha256": script_sha256}, indent=2) + "\n"
    # The manifest, written last, records the script too: if it is unchanged, so is all the
    # rest, and an unchanged re-publish sends nothing.
    if manifest != previous:
        dest.write_text(SCRIPT, script)
        dest.write_text(MANIFEST, manifest)
    dest.remove(_stale(dest, listed, previous, {SCRIPT, MANIFEST} | _files_of(kernels)))


def _place(
    dest: Destination, kver: str, kernel: Path, initrd: Path | None, options: Sequence[str]
) -> dict[str, Any]:
    """Upload one kernel and its initramfs (unless there already); return its manifest entry.
    A unified kernel image (`initrd` None) carries its initrd: it is published alone."""
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
    files = [("kernel", kernel, "vmlinuz")] + ([("initrd", initrd, "initrd")] if initrd else [])
    with ThreadPoolExecutor(max_workers=2) as pool:
        placed = {field: pool.submit(place, local, prefix) for field, local, prefix in files}
        entry: dict[str, Any] = {
            "kver": kver,
            "options": " ".join(options),
            "initrd": None,
            "initrd_sha256": None,
        }
        for field, future in placed.items():
            entry[field], entry[f"{field}_sha256"] = future.result()
    return entry


def publish_kernel(
    dest: Destination,
    config: Config,
    host: str,
    kver: str,
    kernel: Path,
    initrd: Path | None,
    options: Sequence[str],
) -> list[str]:
    """Upload one kernel and switch the script to it; return the kernels the script boots."""
    entry = _place(dest, kver, kernel, initrd, options)
    listed, previous = _manifest(dest)
    kernels = [k for k in listed if k["kver"] != kver] + [entry]
    _switch(dest, config, host, kernels, _target(config, options), listed, previous)
    return [k["kver"] for k in kernels]


def unpublish_kernel(
    dest: Destination,
    config: Config,
    host: str,
    kver: str,
    installed: dict[str, KernelRecord] | None = None,
) -> list[str]:
    """Take `kver` off the NAS and boot the newest `keep` kernels still installed (those the NAS
    has, and those `installed` records, uploaded again); the last kernel stays."""
    listed, previous = _manifest(dest)
    on_nas = {k["kver"]: k for k in listed if k["kver"] != kver}
    known: dict[str, Any] = {**(installed or {}), **on_nas}
    known.pop(kver, None)
    wanted = sorted(known, key=sort_key, reverse=True)[: config.publish.keep]
    if not wanted:
        log.warning("not removing %s from the NAS: it is the only kernel the box can boot", kver)
        return [k["kver"] for k in listed]
    kernels = []
    for name in wanted:
        if name in on_nas:
            kernels.append(on_nas[name])
            continue
        record = known[name]
        kernel, initrd = Path(record["kernel"]), _initrd_of(record)
        if not (kernel.is_file() and (initrd is None or initrd.is_file())):
            log.warning("cannot publish %s again: %s or %s is gone", name, kernel, initrd)
            continue
        kernels.append(_place(dest, name, kernel, initrd, record["options"]))
    if not kernels:
        log.warning("not removing %s from the NAS: no other kernel can be published", kver)
        return [k["kver"] for k in listed]
    _switch(
        dest,
        config,
        host,
        kernels,
        _target(config, kernels[0]["options"].split()),
        listed,
        previous,
    )
    return [k["kver"] for k in kernels]


def _initrd_of(record: KernelRecord | Operation) -> Path | None:
    initrd = record.get("initrd")
    return Path(initrd) if initrd is not None else None


# ---- state and the kernel-install hooks ----


def _state_path(root: Path) -> Path:
    return under(root, paths.PUBLISH_STATE)


def _fresh_state() -> PublishState:
    return {"state": "done", "pending": [], "kernels": [], "installed": {}}


def _check_record(record: Any, action: str | None) -> str | None:
    """What is wrong with a pending operation or installed-kernel record, or None."""
    if not isinstance(record, dict):
        return "not an object"
    if action is not None and record.get("action") not in ("add", "remove"):
        return f'action {record.get("action")!r} is neither "add" nor "remove"'
    kver = record.get("kver")
    if not isinstance(kver, str) or not is_safe_name(kver):
        return f"kver {kver!r} is not a kernel version"
    if action is not None and record["action"] == "remove":
        return None
    if not isinstance(record.get("kernel"), str):
        return "no kernel path"
    if not isinstance(record.get("initrd"), (str, type(None))):  # None: a UKI
        return "no initrd path"
    options = record.get("options")
    if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
        return "options is not a list of strings"
    return None


def _checked_state(data: Any) -> PublishState:
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    state: dict[str, Any] = {**_fresh_state(), **data}
    if not isinstance(state["pending"], list):
        raise ValueError("pending is not a list")
    for index, op in enumerate(state["pending"]):
        wrong = _check_record(op, "action")
        if wrong:
            raise ValueError(f"pending entry {index + 1}: {wrong}")
    if not isinstance(state["kernels"], list) or not all(
        isinstance(k, str) for k in state["kernels"]
    ):
        raise ValueError("kernels is not a list of versions")
    if not isinstance(state["installed"], dict):
        raise ValueError("installed is not an object")
    for kver, record in state["installed"].items():
        wrong = _check_record(record, None)
        if wrong:
            raise ValueError(f"installed {kver}: {wrong}")
    return cast(PublishState, state)  # checked above, key by key


def read_state(root: Path = Path("/")) -> PublishState:
    path = _state_path(root)
    try:
        return _checked_state(json.loads(path.read_text()))
    except FileNotFoundError:
        return _fresh_state()
    except (OSError, ValueError) as err:
        raise AoebootError(f"cannot read {path}: {err}") from None


def _load_state(root: Path) -> PublishState:
    """The state, for changing it: a damaged file is set aside (kept for a look) and replaced,
    so one bad edit never stops every later publish."""
    try:
        return read_state(root)
    except AoebootError as err:
        log.warning("%s", _set_aside(root, err))
        return _fresh_state()


def _set_aside(root: Path, err: AoebootError) -> str:
    path = _state_path(root)
    aside = path.with_name(path.name + ".damaged")
    try:
        os.replace(path, aside)
    except OSError as moved:
        raise AoebootError(f"{err}; cannot set it aside: {moved.strerror}") from None
    return f"{err}; set it aside as {aside} and started anew"


def _write_state(root: Path, state: PublishState) -> None:
    state["updated"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    state["state"] = "pending" if state.get("pending") else "done"
    atomic_write(_state_path(root), json.dumps(state, indent=2) + "\n")


def _kept_dir(root: Path) -> Path:
    return under(root, paths.STATE_DIR) / "initrd"


def _clean_box(root: Path) -> None:
    """Temporary files of a run killed before it renamed them (we hold the lock: none is live)."""
    for pattern in (".initrd-*.tmp",):
        for path in _kept_dir(root).glob(pattern):
            path.unlink(missing_ok=True)
    for path in _state_path(root).parent.glob(f".{_state_path(root).name}.*.tmp"):
        path.unlink(missing_ok=True)


def _run(root: Path, config: Config, state: PublishState) -> PublishState:
    """Carry out what is pending in `state`, in order (the caller holds the lock and has written
    the state: a kill leaves it all pending); what fails and all after it stay pending."""
    ops = list(state["pending"])
    try:
        state["destination"] = config.publish.destination
        state["host"] = host_name(config, root)
        dest = destination(config, root)
        if not ops:  # nothing to do but learn what the NAS boots
            state["kernels"] = [k["kver"] for k in _manifest(dest)[0]]
    except (AoebootError, OSError) as err:
        return _failed(root, config, state, ops, err)
    state["error"] = None
    for index, op in enumerate(ops):
        try:
            if op["action"] == "add":
                state["kernels"] = publish_kernel(
                    dest,
                    config,
                    state["host"],
                    op["kver"],
                    Path(op["kernel"]),
                    _initrd_of(op),
                    op["options"],
                )
            else:
                state["kernels"] = unpublish_kernel(
                    dest, config, state["host"], op["kver"], state["installed"]
                )
        except (AoebootError, OSError) as err:
            return _failed(root, config, state, ops[index:], err)
    state["pending"] = []
    _write_state(root, state)
    return state


def _failed(
    root: Path, config: Config, state: PublishState, ops: list[Operation], err: Exception
) -> PublishState:
    state["pending"] = ops
    state["error"] = str(err)
    _write_state(root, state)
    raise AoebootError(f"publishing to {config.publish.destination} failed: {err}") from None


def _pend(root: Path, state: PublishState, op: Operation) -> None:
    """Record `op` as pending (replacing any other of its kernel) before anything is tried."""
    state["pending"] = [p for p in state["pending"] if p["kver"] != op["kver"]] + [op]
    state["error"] = "started, not finished"
    _write_state(root, state)


def _queue(root: Path, config: Config, state: PublishState, op: Operation) -> PublishState:
    """Record `op` as pending before trying it (a kill leaves it pending), then try; return the
    state after. Never raises for a NAS failure."""
    _pend(root, state, op)
    try:
        return _run(root, config, state)
    except AoebootError as err:
        log.warning("%s; recorded as pending, `aoeboot publish` completes it", err)
        return state


def _kept(root: Path, kver: str) -> Path:
    return _kept_dir(root) / f"initrd-{safe_name(kver, 'kernel version')}"


def after_add(
    *,
    root: Path,
    config: Config,
    kver: str,
    kernel: Path,
    initrd: Path | None,
    options: Sequence[str],
    keep_copy: bool = True,
) -> PublishState:
    """Publish a kernel just installed (`initrd` None: a unified kernel image, published alone);
    return the state after. Never raises for a NAS failure: records it as pending.
    `keep_copy`: the initrd may be gone after the install (kernel-install's staging area)."""
    with lock.held(root):
        state = _load_state(root)
        _clean_box(root)
        record: KernelRecord = {
            "kver": kver,
            "kernel": str(kernel),
            "initrd": str(initrd) if initrd else None,
            "options": list(options),
        }
        _pend(root, state, {"action": "add", **record})  # a kill from here on leaves it pending
        if initrd is not None and keep_copy:
            # A pending publish, and a kernel removed later that brings this one back on the
            # NAS, need the initrd after kernel-install has deleted its staging area.
            kept = _kept(root, kver)
            atomic_copy(initrd, kept, mode=0o600)
            record["initrd"] = str(kept)
        state["installed"][kver] = record
        return _queue(root, config, state, {"action": "add", **record})


def after_remove(*, root: Path, config: Config, kver: str) -> PublishState:
    """Unpublish a kernel just removed, bringing back the newest kernels still installed."""
    with lock.held(root):
        state = _load_state(root)
        _clean_box(root)
        state["installed"].pop(kver, None)
        state = _queue(root, config, state, {"action": "remove", "kver": kver})
        if not any(p["kver"] == kver for p in state["pending"]):
            _kept(root, kver).unlink(missing_ok=True)
        return state


def complete_pending(root: Path, config: Config) -> PublishState:
    """What `aoeboot publish` does: carry out what is pending (raises if the NAS still fails).
    A damaged state file is set aside, and the new one says what the NAS boots."""
    with lock.held(root):
        _clean_box(root)
        try:
            state = read_state(root)
        except AoebootError as err:
            # What it had pending is lost: say so, after writing it anew from what the NAS has.
            told = _set_aside(root, err)
            try:
                _run(root, config, _fresh_state())
            except AoebootError as failed:
                raise AoebootError(f"{told}; {failed}") from None
            raise AoebootError(
                f"{told} from what the NAS boots", hint="reinstall any kernel it had pending"
            ) from None
        if not state["pending"]:
            return state
        return _run(root, config, state)
