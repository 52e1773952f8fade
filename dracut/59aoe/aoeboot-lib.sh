#!/bin/sh
# Shared by the module's hooks and scripts. What they tell each other lives in /tmp, one file
# per fact, because different processes write them at different times (the cmdline hook, udev's
# aoeboot-up for each NIC, the settled loop), each replacing only its own:
#   aoe.root       the root device wanted (/dev/etherd/eX.Y[pN]; empty: UUID=/LABEL= on AoE)
#   aoe.allowed    interfaces and MACs AoE may use (empty: all)
#   aoe.timeout    rd.aoe.timeout;  aoe.start: the uptime it counts from
#   aoe.nocarrier  interfaces still without carrier;  aoe.last: the last discovery's uptime
#   aoe.reported   the report has been printed

# aoe_abft_read: iPXE's AoE Boot Firmware Table, left when it attached the disk (sanhook, or a
# DHCP root-path). Linux sees it only where iPXE installs it as an ACPI table (UEFI; under BIOS
# it stays in base memory). After the 36-byte ACPI header: shelf (16 bits, little-endian),
# slot, 1 reserved, the NIC's MAC. Sets aoe_abft_disk (eX.Y) and aoe_abft_mac; 1 if none.
# shellcheck disable=SC2034 # read by the scripts that source this
aoe_abft_read() {
    aoe_abft_disk="" aoe_abft_mac=""
    set -- /sys/firmware/acpi/tables/aBFT
    [ -r "$1" ] || return 1
    aoe_abft_disk="e$(($(od -An -tu2 -j36 -N2 "$1"))).$(($(od -An -tu1 -j38 -N1 "$1")))"
    aoe_abft_mac=$(od -An -tx1 -j40 -N6 "$1" | tr -s ' \n' '::')
    aoe_abft_mac=${aoe_abft_mac#:}
    aoe_abft_mac=${aoe_abft_mac%:}
    return 0
}

# aoe_discover_on_carrier: of the interfaces in /tmp/aoe.nocarrier (aoeboot-up's), discover on
# those whose carrier has come, once each, and keep the rest for the next settled pass.
aoe_discover_on_carrier() {
    [ -s /tmp/aoe.nocarrier ] && [ -e /dev/etherd/discover ] || return 0
    aoe_waiting=""
    read -r aoe_ifaces < /tmp/aoe.nocarrier
    for aoe_iface in $aoe_ifaces; do
        if [ "$(cat "/sys/class/net/$aoe_iface/carrier" 2> /dev/null)" = 1 ]; then
            info "aoe: $aoe_iface has carrier, discovering"
            echo > /dev/etherd/discover
        else
            aoe_waiting="$aoe_waiting $aoe_iface"
        fi
    done
    if [ -n "$aoe_waiting" ]; then
        echo "${aoe_waiting# }" > /tmp/aoe.nocarrier
    else
        rm -f /tmp/aoe.nocarrier
    fi
    unset aoe_ifaces aoe_waiting aoe_iface
}

# aoe_uptime: whole seconds since boot, in aoe_now.
aoe_uptime() {
    read -r aoe_now _ < /proc/uptime
    aoe_now=${aoe_now%.*}
}

# aoe_clock_start [-n]: rd.aoe.timeout (180 s by default) into aoe.timeout, and now into
# aoe.start; with -n only where the cmdline hook has not already. rd.aoe.timeout rather than
# dracut's rd.retry: it counts from when AoE can first look (aoeboot-up starts it again then),
# and ends in the AoE report. rd.retry (also 180 s) still bounds the initqueue: raise both.
aoe_clock_start() {
    aoe_uptime
    if [ "$1" != -n ] || [ ! -f /tmp/aoe.start ]; then
        echo "$aoe_now" > /tmp/aoe.start
    fi
    if [ "$1" != -n ] || [ ! -f /tmp/aoe.timeout ]; then
        aoe_timeout=$(getarg rd.aoe.timeout=)
        echo "${aoe_timeout:-180}" > /tmp/aoe.timeout
    fi
    unset aoe_timeout
}

# aoe_root_disk: the disk (eX.Y) under the wanted root device, in aoe_disk; empty if none named.
aoe_root_disk() {
    aoe_disk=$(cat /tmp/aoe.root 2> /dev/null)
    aoe_disk=${aoe_disk#/dev/etherd/}
    aoe_disk=${aoe_disk%p*}
}
