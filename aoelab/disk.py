"""Disk images for VM tests: an MBR-partitioned image whose partition 1 is an ext4 root filesystem
holding busybox and a tiny /sbin/init that reports how it booted and powers off cleanly."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

BUSYBOX = Path("/bin/busybox")
PART_START = 2048  # sectors
MARKER = "AOEBOOT-ROOT-MOUNTED"
CLEAN = "AOEBOOT-ROOT-CLEAN"

# Runs as PID 1 after switch_root: print the marker with the uptime (root mounted by then), the
# device / came from, then remount / read-only (flushing over AoE) and power off.
INIT = f"""#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
read up _ < /proc/uptime
root=$(/bin/busybox awk '$2 == "/" && $1 != "rootfs" {{print $1}}' /proc/mounts |
    /bin/busybox tail -n 1)
echo "{MARKER} uptime=$up root=$root" > /dev/console
/bin/busybox sync
if /bin/busybox mount -o remount,ro /; then echo "{CLEAN}" > /dev/console; fi
/bin/busybox poweroff -f
"""

OS_RELEASE = 'NAME="aoeboot test root"\nID=aoeboot-test\nVERSION_ID=1\n'


def root_tree(path: Path) -> Path:
    """A minimal root filesystem tree: busybox, /sbin/init, /etc/os-release (switch-root wants
    it)."""
    for sub in ("bin", "sbin", "etc", "proc", "sys", "dev", "run", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, path / "bin/busybox")
    (path / "bin/sh").symlink_to("busybox")
    init = path / "sbin/init"
    init.write_text(INIT)
    init.chmod(0o755)
    (path / "etc/os-release").write_text(OS_RELEASE)
    return path


def make_disk(image: Path, size_mib: int = 64, label: str = "aoeroot") -> Path:
    """`image`: MBR, partition 1 (from sector 2048 to the end) ext4 with the root tree."""
    with open(image, "wb") as handle:
        handle.truncate(size_mib << 20)
    subprocess.run(
        ["sfdisk", "-q", str(image)],
        input=f"start={PART_START}, type=83\n",
        text=True,
        check=True,
        capture_output=True,
    )
    part_bytes = (size_mib << 20) - PART_START * 512
    with tempfile.TemporaryDirectory() as tmp:
        tree = root_tree(Path(tmp) / "root")
        subprocess.run(
            [
                "mkfs.ext4",
                "-q",
                "-F",
                "-L",
                label,
                "-E",
                f"offset={PART_START * 512}",
                "-d",
                str(tree),
                str(image),
                f"{part_bytes // 1024}k",
            ],
            check=True,
            capture_output=True,
        )
    return image


def fsck_clean(image: Path) -> subprocess.CompletedProcess[str]:
    """e2fsck -n of partition 1 (read-only check); returncode 0 means the filesystem is clean."""
    with tempfile.TemporaryDirectory() as tmp:
        part = Path(tmp) / "p1.img"
        subprocess.run(
            [
                "dd",
                f"if={image}",
                f"of={part}",
                "bs=512",
                f"skip={PART_START}",
                "conv=sparse",
                "status=none",
            ],
            check=True,
        )
        return subprocess.run(["e2fsck", "-n", "-f", str(part)], capture_output=True, text=True)
