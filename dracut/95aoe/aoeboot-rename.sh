#!/bin/sh
# udev RUN on a network interface rename (ACTION=move). The aoe driver matches its aoe_iflist
# by name and drops every frame from an interface not in it: after eth0 became enp0s3 the root
# disk would go silent and die when aoe_deadsecs runs out. Put the new name in the old one's
# place; an empty list (every interface) needs nothing.

list=/sys/module/aoe/parameters/aoe_iflist
old=${DEVPATH_OLD##*/}
new=$INTERFACE
[ -w "$list" ] && [ -n "$old" ] && [ -n "$new" ] || exit 0
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
