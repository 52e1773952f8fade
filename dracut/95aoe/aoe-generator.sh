#!/bin/sh
# systemd generator: root=aoe:eX.Y[pN] is no device path, so systemd-fstab-generator skips it;
# mount /sysroot from /dev/etherd/eX.Y[pN] ourselves.

type getarg > /dev/null 2>&1 || . /lib/dracut-lib.sh

root=$(getarg root=)
case "$root" in
    aoe:e*) ;;
    *) exit 0 ;;
esac

GENERATOR_DIR="$2"
[ -z "$GENERATOR_DIR" ] && exit 1
mkdir -p "$GENERATOR_DIR/initrd-root-fs.target.requires"

flags=$(getarg rootflags=)
getarg ro > /dev/null && flags="${flags:+$flags,}ro"
fstype=$(getarg rootfstype=)
{
    echo "[Unit]"
    echo "Before=initrd-root-fs.target"
    echo "[Mount]"
    echo "Where=/sysroot"
    echo "What=/dev/etherd/${root#aoe:}"
    [ -n "$fstype" ] && echo "Type=$fstype"
    [ -n "$flags" ] && echo "Options=$flags"
} > "$GENERATOR_DIR/sysroot.mount"
ln -sf ../sysroot.mount "$GENERATOR_DIR/initrd-root-fs.target.requires/sysroot.mount"
exit 0
