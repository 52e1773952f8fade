#!/bin/sh
# initqueue/settled: discover on each AoE interface as its carrier comes; while the root disk
# is missing, ask the aoe driver to look again (once a second at most), and give up with a
# report after rd.aoe.timeout seconds.

command -v getarg > /dev/null || . /lib/dracut-lib.sh
. /lib/aoeboot-lib.sh
aoe_discover_on_carrier

aoe_root=$(cat /tmp/aoe.root 2> /dev/null)
aoe_root_disk
if [ -n "$aoe_root" ] && [ ! -e "$aoe_root" ]; then
    aoe_uptime
    # Once the disk exists the driver is reading its partition table: another discovery
    # would only make it identify the disk again.
    if [ ! -d "/sys/block/etherd!$aoe_disk" ] && [ -e /dev/etherd/discover ] \
        && [ "$(cat /tmp/aoe.last 2> /dev/null)" != "$aoe_now" ]; then
        echo "$aoe_now" > /tmp/aoe.last
        echo > /dev/etherd/discover
    fi
    if [ $((aoe_now - $(cat /tmp/aoe.start))) -ge "$(cat /tmp/aoe.timeout)" ]; then
        emergency_shell -n aoe "aoe: root $aoe_root did not appear within $(cat /tmp/aoe.timeout) s"
    fi
fi
unset aoe_root aoe_disk aoe_now
