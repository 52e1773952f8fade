#!/bin/sh
# What AoE sees, in the style of aoe-stat: run on the emergency path and by hand (aoe-report).

[ -f /tmp/aoe.root ] || [ "${0##*/}" = aoe-report ] || return 0
echo "aoe: ---- AoE report ----"
echo "aoe: root $(cat /tmp/aoe.root 2> /dev/null), allowed interfaces: $(cat /tmp/aoe.allowed 2> /dev/null)"
if [ -d /sys/module/aoe ]; then
    echo "aoe: driver loaded, aoe_iflist: $(cat /sys/module/aoe/parameters/aoe_iflist 2> /dev/null)"
else
    echo "aoe: driver NOT loaded (no allowed interface came up?)"
fi
for n in /sys/class/net/*; do
    [ "${n##*/}" = lo ] && continue
    echo "aoe: interface ${n##*/} $(cat "$n/address") operstate $(cat "$n/operstate") carrier $(cat "$n/carrier" 2> /dev/null || echo -)"
done
aoe_seen=0
for d in /sys/block/etherd!*; do
    [ -d "$d" ] || continue
    aoe_seen=1
    echo "aoe: target ${d##*!} state $(cat "$d/state") netif $(cat "$d/netif") mac $(cat "$d/mac") sectors $(cat "$d/size")"
done
[ $aoe_seen = 1 ] || echo "aoe: no AoE target answered"
echo "aoe: ---- end of AoE report ----"
unset aoe_seen
