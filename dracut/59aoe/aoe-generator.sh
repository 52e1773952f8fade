#!/bin/sh
# systemd generator: root=aoe:eX.Y[pN] (or aoe:abft[pN], the disk in iPXE's aBFT) is no device
# path, so systemd-fstab-generator gets it wrong; mount /sysroot from /dev/etherd/... ourselves.

command -v getarg > /dev/null || . /lib/dracut-lib.sh

root=$(getarg root=)
case "$root" in
    aoe:abft*)
        . /lib/aoeboot-lib.sh
        aoe_abft_read || exit 0
        what="/dev/etherd/$aoe_abft_disk${root#aoe:abft}"
        ;;
    aoe:e*) what="/dev/etherd/${root#aoe:}" ;;
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
    echo "What=$what"
    [ -n "$fstype" ] && echo "Type=$fstype"
    [ -n "$flags" ] && echo "Options=$flags"
} > "$GENERATOR_DIR/sysroot.mount"
ln -sf ../sysroot.mount "$GENERATOR_DIR/initrd-root-fs.target.requires/sysroot.mount"
exit 0
