#!/bin/sh
# udev RUN when a network interface is added or renamed. The aoe driver matches its aoe_iflist
# by name and drops every frame from an interface not in it: after eth0 became ens2 the root
# disk would go silent, and die when aoe_deadsecs runs out. Put the new name in the old one's
# place, and drop the names listed twice (aoeboot-up's rule in /run/udev/rules.d already added the
# new name, before udev renamed the NIC); an empty list (every interface) needs nothing. udev
# gives the old name as INTERFACE_OLD when it renamed the interface itself (ACTION=add), the
# kernel as DEVPATH_OLD (ACTION=move).

list=/sys/module/aoe/parameters/aoe_iflist
old=${INTERFACE_OLD:-${DEVPATH_OLD##*/}}
new=$INTERFACE
[ -e "$list" ] && [ -n "$new" ] || exit 0
read -r names < "$list" || exit 0
kept=""
renamed=""
for name in $names; do
    if [ -n "$old" ] && [ "$name" = "$old" ] && [ "$old" != "$new" ]; then
        name=$new
        renamed="$old is now $new: "
    fi
    case " $kept " in
        *" $name "*) ;;
        *) kept="$kept $name" ;;
    esac
done
kept=${kept# }
[ "$kept" = "$names" ] && exit 0
echo "$kept" > "$list"
echo "aoeboot: ${renamed}aoe_iflist is '$kept'" > /dev/kmsg
