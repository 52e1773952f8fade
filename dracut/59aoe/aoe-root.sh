#!/bin/sh
# aoeroot NETIF NETROOT NEWROOT: the netroot handler for root=dhcp with a DHCP root-path
# aoe:eX.Y[pN]. 40network's netroot calls it once DHCP answered on NETIF; from here on it is
# the same wait as for root=aoe:..., and since rootfs-block does not mount root=dhcp, we do.

command -v getarg > /dev/null || . /lib/dracut-lib.sh

aoe_name=${2#aoe:}
case "$aoe_name" in
    e[0-9]*.[0-9]*) ;;
    *) die "aoe: root-path '$2' is not aoe:eX.Y[pN]" ;;
esac
aoe_dev=/dev/etherd/$aoe_name
echo "$aoe_dev" > /tmp/aoe.root
[ -s /tmp/aoe.allowed ] || echo "$1" > /tmp/aoe.allowed # AoE where DHCP answered
. /lib/aoeboot-lib.sh
aoe_clock_start -n

/sbin/aoeboot-up
wait_for_dev -n "$aoe_dev"
# A mount hook, as for NFS: it runs in both flavours (dracut-mount.service under systemd).
aoe_opts=ro
getargbool 0 rw && aoe_opts=rw
aoe_flags=$(getarg rootflags=)
aoe_type=$(getarg rootfstype=)
echo "mount -t ${aoe_type:-auto} -o $aoe_opts${aoe_flags:+,$aoe_flags} $aoe_dev \"\$NEWROOT\"" \
    > "$hookdir"/mount/01-aoe.sh
need_shutdown
exit 0
