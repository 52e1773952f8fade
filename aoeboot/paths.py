"""Where aoeboot's files live, as seen from inside a root (see fsutil.under for a --root)."""

from pathlib import Path

CONFIG = Path("/etc/aoeboot/aoeboot.conf")
KERNEL_CMDLINE = Path("/etc/kernel/cmdline")  # read by 90-loaderentry.install and Fedora's 20-grub
DRACUT_DROPIN = Path("/etc/dracut.conf.d/90-aoeboot.conf")  # makes every dracut run include aoe
STATE_DIR = Path("/var/lib/aoeboot")
PUBLISH_STATE = STATE_DIR / "publish.json"  # last publish: done or pending, and what the NAS has
DRACUT_MODULE = Path("/usr/lib/dracut/modules.d/95aoe")
PLUGIN = Path("/usr/lib/kernel/install.d/60-aoeboot.install")
MODULES = Path("/lib/modules")  # /lib/modules/KVER/{vmlinuz,kernel/drivers/block/aoe/aoe.ko*}
BLS_ENTRIES = Path("loader/entries")  # relative to the boot root ($BOOT: /boot, /efi, /boot/efi)
