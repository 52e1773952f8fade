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
