"""Where aoeboot's files live, as seen from inside a root (see fsutil.under for a --root)."""

from pathlib import Path

CONFIG = Path("/etc/aoeboot/aoeboot.conf")
KERNEL_CMDLINE = Path("/etc/kernel/cmdline")  # read by 90-loaderentry.install and Fedora's 20-grub
DRACUT_DROPIN = Path("/etc/dracut.conf.d/90-aoeboot.conf")  # makes every dracut run include aoe
NM_DROPIN = Path("/etc/NetworkManager/conf.d/90-aoeboot.conf")  # NetworkManager, for the AoE NICs
STATE_DIR = Path("/var/lib/aoeboot")
PUBLISH_STATE = STATE_DIR / "publish.json"  # last publish: done or pending, and what the NAS has
DRACUT_MODULE = Path("/usr/lib/dracut/modules.d/59aoe")
PLUGIN = Path("/usr/lib/kernel/install.d/60-aoeboot.install")
MODULES = Path("/lib/modules")  # /lib/modules/KVER/{vmlinuz,kernel/drivers/block/aoe/aoe.ko*}
BLS_ENTRIES = Path("loader/entries")  # relative to the boot root ($BOOT: /boot, /efi, /boot/efi)
FSTAB = Path("/etc/fstab")
DEFAULT_GRUB = Path("/etc/default/grub")  # GRUB_CMDLINE_LINUX: grub2-mkconfig rewrites entries
USR_KERNEL_CMDLINE = Path("/usr/lib/kernel/cmdline")  # kernel-install's fallback after /etc
UDEV_RULES = Path("/usr/lib/udev/rules.d/61-aoeboot.rules")  # by-uuid links for AoE disks
PUBLISH_TIMER = "aoeboot-publish.timer"
WATCH_SERVICE = "aoeboot-watch.service"  # keeps the disk's NICs up, tells of a silent NAS
WATCH_STATE = Path("/run/aoeboot/watch.json")
UNIT_DIR = Path("/usr/lib/systemd/system")
