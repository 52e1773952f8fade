#!/bin/sh
# aoeboot-up: queued by udev whenever a NIC appears or is renamed (so look at them all). Bring
# every interface AoE may use up (no address), set the driver's aoe_deadsecs (rd.aoe.deadsecs=,
# else 0: never give up on the NAS), restrict it to those interfaces when rd.aoe.iface= names
# some (by name: that is all aoe_iflist knows), and discover on each as soon as it has carrier,
# so boot never waits for the driver's own 60 s broadcast timer.

command -v getarg > /dev/null || . /lib/dracut-lib.sh
. /lib/aoeboot-lib.sh

[ -f /tmp/aoe.allowed ] || exit 0
allowed=$(cat /tmp/aoe.allowed)
iflist=/sys/module/aoe/parameters/aoe_iflist
# in /run: kept after switch_root, so the real root's udev follows renames there too
follow_rules=/run/udev/rules.d/81-aoeboot-iflist.rules

aoe_allowed() {
    [ -z "$allowed" ] && return 0
    case " $allowed " in
        *" $1 "* | *" $2 "*) return 0 ;;
    esac
    return 1
}

# Sets names and macs: the interfaces AoE may use, now. One allowed by name stays allowed by
# its MAC, so that it is still the one after a rename.
read_allowed() {
    names="" macs=""
    for n in /sys/class/net/*; do
        iface=${n##*/}
        [ "$iface" = lo ] && continue
        read -r mac < "$n/address" || continue
        aoe_allowed "$iface" "$mac" || continue
        names="$names $iface"
        macs="$macs${macs:+|}$mac"
        case " $allowed " in
            *" $mac "*) ;;
            *) allowed="$allowed $mac" && echo "$allowed" > /tmp/aoe.allowed ;;
        esac
    done
    names=${names# }
}

# The driver drops every frame from an interface not in its list, so a renamed NIC would leave
# the root disk silent, and whatever runs after the rename to fix the list may itself have to be
# read from that disk. This rule, run by udev itself before it renames a NIC (80-net-setup-link
# set the new name), adds the new name to the list; aoeboot-rename then drops the old one.
write_follow_rules() {
    mkdir -p "${follow_rules%/*}"
    {
        echo "# written by aoeboot-up: the aoe driver's interface list follows these NICs' renames"
        printf 'SUBSYSTEM=="net", ACTION=="add|move", ATTR{address}=="%s", ' "$macs"
        printf 'ATTR{[module/aoe]parameters/aoe_iflist}=="?*", '
        # shellcheck disable=SC2016 # $attr and $name are udev's, expanded by udev
        printf 'ATTR{[module/aoe]parameters/aoe_iflist}="$attr{[module/aoe]parameters/aoe_iflist} $name"\n'
    } > "$follow_rules.tmp" && mv -f "$follow_rules.tmp" "$follow_rules"
}

read_allowed
ifaces=$names
[ -n "$ifaces" ] || exit 0
for iface in $ifaces; do
    ip link set dev "$iface" up
done
[ -z "$allowed" ] || write_follow_rules

# The root disk waits for its NAS however long it is away, like an NFS hard mount: the driver's
# own default (180 s) fails every later write after a NAS reboot that long. rd.aoe.deadsecs=
# (aoeboot.conf's deadsecs) or the module's own aoe.aoe_deadsecs= say otherwise. The module
# keeps the value after switch_root (root holds it loaded).
deadsecs=$(getarg rd.aoe.deadsecs=) || deadsecs=$(getarg aoe.aoe_deadsecs=) || deadsecs=0
case "$deadsecs" in
    '' | *[!0-9]*)
        warn "aoe: rd.aoe.deadsecs='$deadsecs' is not a number of seconds; using 0 (never give up)"
        deadsecs=0
        ;;
esac

if [ ! -d /sys/module/aoe ]; then
    # rd.aoe.timeout counts from here, when AoE can first look: a NIC whose driver came late
    # (a slow boot) must not eat the time the NAS has to answer
    aoe_uptime
    echo "$aoe_now" > /tmp/aoe.start
fi
if [ -d /sys/module/aoe ]; then
    echo "$deadsecs" > /sys/module/aoe/parameters/aoe_deadsecs
    # every interface (no list at all, which no later rename can make stale), or these
    [ -z "$allowed" ] || echo "$ifaces" > "$iflist"
elif [ -z "$allowed" ]; then
    modprobe aoe aoe_deadsecs="$deadsecs"
else
    modprobe aoe aoe_deadsecs="$deadsecs" aoe_iflist="$ifaces"
fi
# A rename between reading the names and setting the list found no list to follow it (the
# module was loading), or was undone by this write: read the names again until they hold.
i=0
while [ -n "$allowed" ] && [ $i -lt 10 ]; do
    read_allowed
    read -r current < "$iflist" || break
    [ -z "$names" ] || [ "$names" = "$current" ] && break
    info "aoe: interfaces renamed while aoe came up: aoe_iflist is now '$names'"
    echo "$names" > "$iflist"
    ifaces=$names
    i=$((i + 1))
done

# e1000 and friends raise carrier seconds after probe; frames sent before that are lost. The
# settled hook discovers on each interface as its carrier comes (udev has no event for it), so
# that this job ends now: initqueue jobs run one at a time, and a NIC with no cable must not
# hold the others back.
echo "$ifaces" > /tmp/aoe.nocarrier
aoe_discover_on_carrier
exit 0
