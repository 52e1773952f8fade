#!/bin/sh
# What AoE sees, in the style of aoe-stat: run on the emergency path and by hand (aoeboot-report).

command -v warn > /dev/null || . /lib/dracut-lib.sh
# warn, not echo: under systemd only the kernel log reaches the console
# As a hook: only when AoE was wanted, and once (emergency.service may have run it already).
if [ "${0##*/}" != aoeboot-report ]; then
    [ -f /tmp/aoe.root ] && [ ! -e /tmp/aoe.reported ] || return 0
fi
warn "aoe: ---- AoE report ----"
aoe_wanted=$(cat /tmp/aoe.root 2> /dev/null)
[ -n "$aoe_wanted" ] || aoe_wanted="$(getarg root=) (AoE wanted: rd.aoe)"
warn "aoe: root $aoe_wanted, allowed interfaces: $(cat /tmp/aoe.allowed 2> /dev/null)"
if [ -d /sys/module/aoe ]; then
    warn "aoe: driver loaded, aoe_iflist: $(cat /sys/module/aoe/parameters/aoe_iflist 2> /dev/null)"
else
    warn "aoe: driver NOT loaded (no allowed interface came up?)"
fi
for n in /sys/class/net/*; do
    [ "${n##*/}" = lo ] && continue
    warn "aoe: interface ${n##*/} $(cat "$n/address") operstate $(cat "$n/operstate") carrier $(cat "$n/carrier" 2> /dev/null || echo -)"
done
# The servers install-entry recorded (rd.aoe.server=, baked into the image), compared as the
# driver writes MACs; its debugfs file lists every server of a disk, sysfs `mac` only the first.
aoe_recorded=$(getarg rd.aoe.server=)
aoe_raw=" $(echo "$aoe_recorded" | tr 'A-F,' 'a-f ' | tr -d ':-') "
[ -d /sys/kernel/debug/aoe ] || mount -t debugfs debugfs /sys/kernel/debug 2> /dev/null
. /lib/aoeboot-lib.sh
aoe_root_disk
aoe_root_disk=$aoe_disk
aoe_seen=0
for d in /sys/block/etherd!*; do
    [ -d "$d" ] || continue
    aoe_seen=1
    aoe_disk=${d##*!}
    aoe_servers=$(sed -n 's/^\([0-9a-f]\{12\}\):[0-9]*:[0-9]*:[0-9]*$/\1/p' \
        "/sys/kernel/debug/aoe/$aoe_disk" 2> /dev/null | tr '\n' ' ')
    aoe_servers=${aoe_servers% }
    [ -n "$aoe_servers" ] || aoe_servers=$(cat "$d/mac")
    warn "aoe: target $aoe_disk state $(cat "$d/state") netif $(cat "$d/netif") mac $aoe_servers sectors $(cat "$d/size")"
    # the root disk's servers (every disk's when root is named by UUID= or LABEL=)
    if [ -n "$aoe_recorded" ] && [ "${aoe_root_disk:-$aoe_disk}" = "$aoe_disk" ]; then
        for m in $aoe_servers; do
            case "$aoe_raw" in
                *" $m "*) ;;
                *) warn "aoe: target $aoe_disk answered by $(echo "$m" | sed 's/../&:/g; s/:$//'), a server this box did not record (rd.aoe.server=$aoe_recorded): a second NAS exporting $aoe_disk, or a spoofer" ;;
            esac
        done
    fi
done
[ $aoe_seen = 1 ] || warn "aoe: no AoE target answered"
warn "aoe: ---- end of AoE report ----"
: > /tmp/aoe.reported
unset aoe_seen aoe_wanted aoe_recorded aoe_raw aoe_root_disk aoe_disk aoe_servers m
