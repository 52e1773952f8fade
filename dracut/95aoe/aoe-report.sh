#!/bin/sh
# What AoE sees, in the style of aoe-stat: run on the emergency path and by hand (aoe-report).

type warn > /dev/null 2>&1 || . /lib/dracut-lib.sh
# warn, not echo: under systemd only the kernel log reaches the console
# As a hook: only when AoE was wanted, and once (emergency.service may have run it already).
if [ "${0##*/}" != aoe-report ]; then
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
aoe_seen=0
for d in /sys/block/etherd!*; do
    [ -d "$d" ] || continue
    aoe_seen=1
    warn "aoe: target ${d##*!} state $(cat "$d/state") netif $(cat "$d/netif") mac $(cat "$d/mac") sectors $(cat "$d/size")"
done
[ $aoe_seen = 1 ] || warn "aoe: no AoE target answered"
warn "aoe: ---- end of AoE report ----"
: > /tmp/aoe.reported
unset aoe_seen aoe_wanted
