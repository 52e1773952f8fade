"""Fedora's kernel packaging modelled on a Debian image: `dpkg -i linux-image-*` running
`kernel-install add`, on request.

Fedora's kernel-core calls `kernel-install add` from its own %posttrans. Debian's kernel
packages do not: their postinst runs the hooks in /etc/kernel/postinst.d, where dracut's hook
calls dracut directly (writing /boot/initrd.img-KVER) and systemd-boot's zz-systemd-boot calls
`kernel-install add KVER IMAGE` only when systemd-boot is installed on the ESP (`bootctl
is-installed`), which it never is in these images. `kernel-install add` itself runs every
plugin in /usr/lib/kernel/install.d, systemd's and dracut's alike, whatever else is installed;
with nothing set in /usr/lib/kernel/install.conf it picks the layout `other` unless
$BOOT/loader/entries.srel or $BOOT/<entry-token> exists.
"""

from __future__ import annotations

from pathlib import Path

KERNEL_HOOK = """#!/bin/sh
# aoelab: a model of Fedora's kernel-core scriptlets, which call kernel-install themselves
# (Debian's kernel packages only run dracut from /etc/kernel/postinst.d).
set -e
case "${{DEB_MAINT_PARAMS:-}}" in
    *{when}*|'') ;;
    *) exit 0 ;;
esac
exec kernel-install {command}
"""


def add_kernel_install_hooks(target: Path) -> None:
    """Make `dpkg -i linux-image-*` in `target` run `kernel-install add KVER IMAGE` (and removal
    run `kernel-install remove KVER`) as Fedora's kernel packages do. They run after Debian's
    own dracut hook, and kernel-install's 50-dracut.install then builds a second initramfs
    (into its staging area) unless masked: /etc/kernel/install.d/50-dracut.install -> /dev/null."""
    for phase, when, command in (
        ("postinst.d", "configure", 'add "$1" "$2"'),
        ("postrm.d", "remove", 'remove "$1"'),
    ):
        hook = target / "etc/kernel" / phase / "zz-aoelab-kernel-install"
        hook.parent.mkdir(parents=True, exist_ok=True)
        hook.write_text(KERNEL_HOOK.format(when=when, command=command))
        hook.chmod(0o755)
