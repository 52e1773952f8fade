#!/bin/sh
# udev RUN when a network interface is renamed. The aoe driver matches its aoe_iflist by name
# and drops every frame from an interface not in it: after eth0 became ens2 the root disk would
# go silent, and die when aoe_deadsecs runs out. Put the new name in the old one's place; an
# empty list (every interface) needs nothing. udev gives the old name as INTERFACE_OLD when it
# renamed the interface itself (ACTION=add), the kernel as DEVPATH_OLD (ACTION=move).

list=/sys/module/aoe/parameters/aoe_iflist
old=${INTERFACE_OLD:-${DEVPATH_OLD##*/}}
new=$INTERFACE
[ -e "$list" ] && [ -n "$old" ] && [ -n "$new" ] && [ "$old" != "$new" ] || exit 0
read -r names < "$list" || exit 0
renamed=""
found=0
for name in $names; do
    if [ "$name" = "$old" ]; then
        name=$new
        found=1
    fi
    renamed="$renamed $name"
done
[ $found = 1 ] || exit 0
echo "${renamed# }" > "$list"
echo "aoeboot: $old is now $new: aoe_iflist is '${renamed# }'" > /dev/kmsg
