"""Boot tests: the Debian kernel, initramfs images built with our module from the working tree,
vblade on a tap in a namespace, qemu (TCG here) with the serial console captured."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from aoelab import dracutdir
from aoelab.kernel import Kernel, installed_kernel
from aoelab.netns import Namespace
from tests.helpers import require_programs, require_root


@pytest.fixture(scope="session")
def kernel() -> Kernel:
    require_root()
    require_programs("qemu-system-x86_64", "dracut", "vblade", "mkfs.ext4", "sfdisk")
    found = installed_kernel()
    if found is None:
        pytest.fail("no /boot/vmlinuz-* with an aoe module: install linux-image-amd64")
    return found


@pytest.fixture(scope="session")
def initramfs(kernel: Kernel, tmp_path_factory: pytest.TempPathFactory):
    """Build each flavour once per session: 'systemd', 'shell', or 'systemd-dhcp' (with dracut's
    network module and its DHCP client, for root=dhcp)."""
    work = tmp_path_factory.mktemp("initramfs")
    built = {}

    def get(flavour: str) -> Path:
        if flavour not in built:
            extra = ["-a", "network network-legacy"] if flavour.endswith("-dhcp") else []
            built[flavour] = dracutdir.build(
                work / f"{flavour}.img",
                kernel.version,
                work,
                systemd=flavour.startswith("systemd"),
                extra=extra,
            )
        return built[flavour]

    return get


@pytest.fixture
def nas() -> Iterator[Namespace]:
    """A namespace with tap0 for the VM; what the test starts on tap0 is the NAS."""
    with Namespace("aoevm") as ns:
        ns.add_tap("tap0")
        yield ns
