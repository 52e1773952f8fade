"""Benchmark the kernel-install plugin: what 60-aoeboot.install itself costs inside an add.

Two whole `kernel-install add` runs of ~65 s each differ by more than the plugin costs, so the
difference of two of them is noise. Instead one `kernel-install add` with the plugin (a dracut
initrd generator like Fedora's 50-dracut.install, with our drop-in's effect --add aoe; then our
plugin; then 90-loaderentry.install) records, just before our plugin runs, its arguments, its
environment and the state it finds (the staging area, the boot and config directories). The
plugin is then run alone, on a fresh copy of that state, with those arguments and that
environment, --runs times: the median is its cost. Cross-checks: the plugin's own run time
inside that add (timestamps of the plugins around it), and one add without the plugin beside it.
Goal (issue 4): the plugin costs <= 5 % of a kernel-install add, and the add runs dracut once.
Run as root: python -m bench.kernel_install [--runs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from aoelab import dracutdir
from aoelab.kernel import Kernel
from bench import REPO, kernel_with_aoe

PLUGIN = REPO / "kernel-install.d/60-aoeboot.install"
LOADERENTRY = "/usr/lib/kernel/install.d/90-loaderentry.install"
MACHINE_ID = "0123456789abcdef0123456789abcdef"
GENERATOR = """#!/bin/sh
# stand-in for Fedora's 50-dracut.install: build into the staging area
[ "$1" = add ] || exit 0
echo run >> {count}
exec dracut --force --quiet --kver "$2" --add aoe "$KERNEL_INSTALL_STAGING_AREA/initrd"
"""
RECORD = """#!/bin/sh
# what 60-aoeboot.install is about to be given, and the state it will find; then the time
[ "$1" = add ] || exit 0
mkdir -p {snap}
for arg in "$@"; do printf '%s\\0' "$arg"; done > {snap}/argv
env -0 > {snap}/env
cp -a "$KERNEL_INSTALL_STAGING_AREA" {snap}/staging
cp -a {top} {snap}/top
date +%s.%N > {snap}/start
"""
MARK = """#!/bin/sh
[ "$1" = add ] || exit 0
date +%s.%N > {snap}/end
"""


def script(path: Path, text: str) -> str:
    path.write_text(text)
    path.chmod(0o755)
    return str(path)


@dataclass
class Added:
    took: float  # seconds, the whole `kernel-install add`
    dracut_runs: int
    top: Path  # its tree: boot, conf, the aoeboot root
    snapshot: Path  # with the plugin: what it was given and found
    inside: float | None = None  # with the plugin: its run time inside the add


def add(work: Path, kernel: Kernel, name: str, base: Path, with_plugin: bool) -> Added:
    """One `kernel-install add` in a tree of its own; with the plugin, record what it gets."""
    top, snap = work / name, work / f"{name}.snapshot"
    boot, conf, count = top / "boot", top / "conf", top / "dracut-runs"
    boot.mkdir(parents=True)
    conf.mkdir()
    (conf / "install.conf").write_text("layout=bls\n")
    (conf / "cmdline").write_text("quiet root=/dev/etherd/e11.0p1 rd.aoe.iface=eth0\n")
    (conf / "aoeboot.conf").write_text("[boot]\ntarget = e11.0p1\ninterfaces = eth0\n")
    plugins = [script(top / "50-dracut.install", GENERATOR.format(count=count))]
    if with_plugin:
        plugins += [
            script(work / f"{name}-59-record.install", RECORD.format(snap=snap, top=top)),
            str(PLUGIN),
            script(work / f"{name}-61-mark.install", MARK.format(snap=snap)),
        ]
    plugins.append(LOADERENTRY)
    env = {
        **os.environ,
        "BOOT_ROOT": str(boot),
        "KERNEL_INSTALL_CONF_ROOT": str(conf),
        "MACHINE_ID": MACHINE_ID,
        "KERNEL_INSTALL_PLUGINS": " ".join(plugins),
        "dracutbasedir": str(base),
        "AOEBOOT_ROOT": str(top),
        # the plugin runs `aoeboot`: this checkout's, whatever the venv has installed
        "PYTHONPATH": str(REPO),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    start = time.perf_counter()
    subprocess.run(
        ["kernel-install", "add", kernel.version, str(kernel.image)], env=env, check=True
    )
    took = time.perf_counter() - start
    added = Added(took, len(count.read_text().split()), top, snap)
    if with_plugin:
        added.inside = float((snap / "end").read_text()) - float((snap / "start").read_text())
    return added


def plugin_alone(work: Path, recorded: Added, run: int) -> float:
    """Run the plugin as kernel-install ran it, on a fresh copy of the state it found then."""
    snap = recorded.snapshot
    argv = (snap / "argv").read_bytes().decode().split("\0")[:-1]
    env: dict[str, str] = dict(
        item.split("=", 1)
        for item in (snap / "env").read_bytes().decode().split("\0")
        if "=" in item
    )
    old_top, old_staging = str(recorded.top), env["KERNEL_INSTALL_STAGING_AREA"]
    here = work / f"alone-{run}"
    shutil.copytree(snap / "top", here / "top", symlinks=True)
    shutil.copytree(snap / "staging", here / "staging", symlinks=True)

    def moved(text: str) -> str:
        return text.replace(old_staging, str(here / "staging")).replace(old_top, str(here / "top"))

    argv, env = [moved(a) for a in argv], {k: moved(v) for k, v in env.items()}
    start = time.perf_counter()
    subprocess.run([str(PLUGIN), *argv], env=env, check=True)
    took = time.perf_counter() - start
    shutil.rmtree(here)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="runs of the plugin alone (>= 5)")
    args = parser.parse_args()
    if args.runs < 5:
        parser.error("--runs must be at least 5 for a stable median")
    kernel = kernel_with_aoe()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        base = dracutdir.overlay(work)
        without = add(work, kernel, "without", base, with_plugin=False)
        print(f"kernel-install add without the plugin: {without.took:6.2f} s", flush=True)
        with_ = add(work, kernel, "with", base, with_plugin=True)
        print(
            f"kernel-install add with the plugin:    {with_.took:6.2f} s (the plugin inside "
            f"it: {with_.inside:.3f} s; {with_.dracut_runs} dracut run(s))",
            flush=True,
        )
        alone: list[float] = []
        for run in range(args.runs):
            alone.append(plugin_alone(work, with_, run))
            print(f"plugin alone, run {run + 1}: {alone[-1]:.3f} s", flush=True)
    median = statistics.median(alone)
    share = median / without.took
    print(
        f"\nplugin alone, {args.runs} runs: median {median:.3f} s, min {min(alone):.3f} s, "
        f"max {max(alone):.3f} s"
    )
    print(f"plugin inside the add: {with_.inside:.3f} s (cross-check)")
    print(
        f"side by side, one pair: without {without.took:.2f} s, with {with_.took:.2f} s, "
        f"difference {with_.took - without.took:+.2f} s (cross-check only: mostly noise)"
    )
    print(
        f"plugin / kernel-install add: {100 * share:.2f} % "
        f"(goal <= 5 %: {'met' if share <= 0.05 else 'MISSED'}); "
        f"dracut runs in the add with the plugin: {with_.dracut_runs} "
        f"(goal 1: {'met' if with_.dracut_runs == 1 else 'MISSED'})"
    )


if __name__ == "__main__":
    main()
