"""The package on a real system that has only what the spec requires (Debian 13 trixie, the
closest stack to Fedora we can run: dracut 106, systemd 257, kernel 6.12).

- The spec's `Requires:` are enough: on a tree of only their Debian equivalents (plus a kernel and
  python3), our drop-in makes dracut build an image with aoe.ko and our module; without
  dracut-network (which holds kernel-network-modules, as Fedora's does) the same run fails.
- Removal leaves kernel installs working: with the package's files gone and the drop-in left
  behind (a removal without rpm's %ghost), `kernel-install add` succeeds; the old unconditional
  drop-in made it fail.

Cold, the tree takes about a minute to build (aoelab.debtree.minimal_tree caches it); each
test then runs one full dracut build (15-20 s here) and one that fails at once: under a minute
warm, under two cold.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aoeboot import bootfiles, initramfs
from aoelab import chroot, debtree, package, sysimage
from tests.helpers import REPO, require_programs, require_root

SPEC = REPO / "spec/aoeboot.spec"
DROPIN = "etc/dracut.conf.d/90-aoeboot.conf"
# What install-entry wrote before the drop-in learned to ask for nothing once the module is gone.
OLD_DROPIN_TEXT = 'add_dracutmodules+=" aoe "\n'

# Fedora's name of each package the spec requires -> the Debian package that holds the same.
FEDORA_TO_DEBIAN = {
    "dracut": "dracut",
    "dracut-network": "dracut-network",
    "kmod": "kmod",
    "iproute": "iproute2",
    "systemd-udev": "udev",
    "python3dist(click)": "python3-click",
    "python3dist(pyudev)": "python3-pyudev",
}
# Not from the spec: the kernel the box boots (kernel-core on Fedora: the .debs minimal_tree
# adds) and the interpreter the python3dist() requirements run on.
ALSO = ("python3",)

TOOLS = ("mmdebstrap", "chroot", "tar")


def spec_requires(text: str) -> list[str]:
    """The names in every `Requires:` line of a spec (both branches of its conditionals: with
    the pyproject macros Fedora's generator writes the python3dist() ones from pyproject.toml,
    without them the spec does), versions dropped, in order, each once."""
    names: list[str] = []
    for line in text.splitlines():
        match = re.match(r"Requires(?:\([^)]*\))?:\s*(.*)", line, re.I)
        if match is None:
            continue
        value = re.sub(r"\s*(?:<=|>=|<|>|=)\s*\S+", "", match.group(1))  # version constraints
        for name in re.split(r"[,\s]+", value.strip()):
            if name and name not in names:
                names.append(name)
    return names


def debian_packages() -> list[str]:
    fedora = spec_requires(SPEC.read_text())
    unknown = [name for name in fedora if name not in FEDORA_TO_DEBIAN]
    if unknown:
        pytest.fail(
            f"{SPEC.name} requires {unknown}, which FEDORA_TO_DEBIAN in {__file__} does "
            "not map to Debian packages: add them"
        )
    return [FEDORA_TO_DEBIAN[name] for name in fedora] + list(ALSO)


def test_spec_requires_are_parsed_and_match_pyproject():
    names = spec_requires(SPEC.read_text())
    assert names[:2] == ["dracut", "dracut-network"]
    assert "iproute" in names and "python3-systemd" not in names  # Recommends are not Requires
    # The hand-written python3dist() lines are what Fedora's generator makes from pyproject.toml.
    # (no tomllib before Python 3.11: the one-line list read with a pattern)
    listed = re.search(r"^dependencies = \[(.*)\]$", (REPO / "pyproject.toml").read_text(), re.M)
    assert listed is not None
    wanted = {
        f"python3dist({re.split(r'[<>=!~; ]', dep)[0].lower()})"
        for dep in re.findall(r'"([^"]+)"', listed.group(1))
    }
    assert wanted == {name for name in names if name.startswith("python3dist(")}
    assert spec_requires("Requires: a >= 1, b\nRequires(post): c\nBuildRequires: d\n") == [
        "a",
        "b",
        "c",
    ]


@pytest.fixture(scope="module")
def tree() -> Path:
    """The tarball of a trixie tree with only the spec's requirements, a kernel and python3."""
    require_root()
    require_programs(*TOOLS)
    started = time.monotonic()
    tarball = debtree.minimal_tree(debian_packages())
    print(f"minimal tree {tarball.name}: {time.monotonic() - started:.1f} s")
    return tarball


@pytest.fixture
def system(tree: Path, tmp_path: Path) -> Iterator[Path]:
    """A fresh copy of the tree with aoeboot installed as the package installs it and the
    drop-in written as `aoeboot install-entry` writes it."""
    with debtree.unpacked(tree, tmp_path / "root") as target:
        package.install_aoeboot(target)
        assert bootfiles.ensure_dracut_dropin(target)
        assert (target / DROPIN).read_text() == bootfiles.DRACUT_DROPIN_TEXT
        yield target


KEPT = "boot/kernel-install-initrd"
KEEP_PLUGIN = f"""#!/bin/sh
# aoelab probe: keep the initramfs 50-dracut.install left in the staging area
[ "$1" = add ] && [ -f "$KERNEL_INSTALL_STAGING_AREA/initrd" ] || exit 0
cp "$KERNEL_INSTALL_STAGING_AREA/initrd" /{KEPT}
"""


def keep(target: Path) -> None:
    plugin = target / "etc/kernel/install.d/99-aoelab-keep-initrd.install"
    plugin.parent.mkdir(parents=True, exist_ok=True)
    plugin.write_text(KEEP_PLUGIN)
    plugin.chmod(0o755)


def kernel_version(target: Path) -> str:
    kernels = sysimage.boot_kernels(target)
    assert len(kernels) == 1, kernels
    return kernels[0]


def installed(target: Path, name: str) -> bool:
    state = chroot.chroot_run(
        target, ["dpkg-query", "-W", "-f", "${db:Status-Abbrev}", name], check=False
    )
    return state.stdout.startswith("ii")


def dracut(target: Path, kver: str):
    """`dracut --force --kver KVER /tmp/x.img` in `target`: no module named on the command line,
    so only the configuration (our drop-in) can bring ours in."""
    return chroot.chroot_run(
        target, ["dracut", "--force", "--kver", kver, "/tmp/x.img"], check=False
    )


@pytest.mark.dracut
def test_the_spec_requires_are_enough_and_dracut_network_is_one_of_them(system: Path):
    kver = kernel_version(system)
    assert all(installed(system, name) for name in debian_packages())
    assert not installed(system, "initramfs-tools")
    assert not installed(system, "python3-systemd")  # only recommended: not needed to build
    built = dracut(system, kver)
    assert built.returncode == 0, built.stderr[-3000:]
    assert initramfs.missing(system / "tmp/x.img") == []

    network = "usr/lib/dracut/modules.d/90kernel-network-modules"
    assert (system / network).is_dir()

    # The negative control: the same system without dracut-network.
    chroot.chroot_run(system, ["dpkg", "--purge", "dracut-network"])
    assert not (system / network).exists()
    failed = dracut(system, kver)
    print(f"without dracut-network, dracut exits {failed.returncode}:\n{failed.stderr}")
    assert failed.returncode != 0
    # dracut 106's words (older dracut: "dracut module 'aoe' depends on 'kernel-network-...'")
    assert re.search(
        r"[Mm]odule 'aoe' depends on (module )?'kernel-network-modules', which "
        r"can't be installed",
        failed.stderr,
    ), failed.stderr[-3000:]
    assert "Module 'aoe' cannot be installed." in failed.stderr


@pytest.mark.dracut
def test_removal_leaves_the_dropin_and_kernel_installs_working(system: Path):
    kver = kernel_version(system)
    removed = package.remove_aoeboot(system)
    for gone in (
        "usr/bin/aoeboot",
        "usr/lib/dracut/modules.d/59aoe",
        "usr/lib/kernel/install.d/60-aoeboot.install",
        f"{package.SITE}/aoeboot",
    ):
        assert gone in removed and not (system / gone).exists(), gone
    assert (system / DROPIN).read_text() == bootfiles.DRACUT_DROPIN_TEXT  # left behind

    leftovers = [
        str(p.relative_to(system))
        for p in system.rglob("*")
        if "aoeboot" in p.name or p.name == "59aoe"
    ]
    assert leftovers == [DROPIN]

    # Debian's kernel-install (layout "other") builds the initramfs into its staging area and
    # drops it (its 55-initrd.install hands on /boot/initrd.img-KVER instead): a probe plugin
    # after 50-dracut keeps a copy to look into.
    keep(system)
    install = chroot.chroot_run(
        system, ["kernel-install", "add", kver, f"/boot/vmlinuz-{kver}"], check=False
    )
    assert install.returncode == 0, install.stderr[-3000:]
    image = system / KEPT
    assert image.is_file(), "50-dracut.install built no initramfs"
    # the drop-in asked for nothing (a hostonly image: aoe.ko is not in it either)
    assert "aoeboot dracut module" in initramfs.missing(image)
    image.unlink()

    # The old drop-in, which named the module whether or not it was installed, fails the same
    # kernel install: the test would have caught it.
    (system / DROPIN).write_text(OLD_DROPIN_TEXT)
    failed = chroot.chroot_run(
        system, ["kernel-install", "add", kver, f"/boot/vmlinuz-{kver}"], check=False
    )
    print(f"with the old drop-in, kernel-install exits {failed.returncode}:\n{failed.stderr}")
    assert failed.returncode != 0
    assert "dracut[E]: Module 'aoe' cannot be found." in failed.stderr
    assert "50-dracut.install failed with exit status 1." in failed.stderr
    assert not (system / KEPT).exists()
