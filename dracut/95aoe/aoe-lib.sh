#!/bin/sh
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

# aoe_discover_on_carrier: of the interfaces in /tmp/aoe.nocarrier (aoe-up's), discover on
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
