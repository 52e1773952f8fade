#!/bin/sh
# Root on AoE: root=aoe:eX.Y[pN] (iPXE's spelling) or root=/dev/etherd/eX.Y[pN]; also
# root=UUID=/LABEL= on an AoE disk when rd.aoe.iface= (or rd.aoe=1) says AoE is wanted.
# root=dhcp with a DHCP root-path aoe:eX.Y[pN] where a DHCP module (network) is included.
# root=aoe:abft[pN]: the disk iPXE attached, from its aBFT; with an aBFT present AoE is wanted
# and its NIC is the interface, so root=UUID= needs no AoE option at all.
# Options: rd.aoe.iface=IF|MAC[,...] (else the aBFT's NIC, else BOOTIF=), rd.aoe.timeout=S
# (aoeboot-lib.sh says why beside rd.retry), rd.aoe.deadsecs=S (aoeboot-up),
# rd.aoe.server=MAC[,...] (the recorded servers, for the report: aoeboot-report.sh).

command -v getarg > /dev/null || . /lib/dracut-lib.sh

# root=dhcp: 40network's netroot sources the cmdline hooks again with the DHCP root-path in
# $netroot; /sbin/aoeroot (aoe-root.sh) takes it from there.
# shellcheck disable=SC2034 # rootok is read by dracut after the cmdline hooks
if [ "${netroot%%:*}" = aoe ]; then
    rootok=1
    return 0
fi

[ -z "$root" ] && root=$(getarg root=)

. /lib/aoeboot-lib.sh
aoe_abft_read && info "aoe: aBFT from iPXE: $aoe_abft_disk on $aoe_abft_mac"

# shellcheck disable=SC2034 # rootok is read by dracut after the cmdline hooks
case "${root#block:}" in
    aoe:abft*)
        if [ -z "$aoe_abft_disk" ]; then
            warn "aoe: root=$root but no aBFT: iPXE leaves one Linux can read only under UEFI"
            return 0
        fi
        root="block:/dev/etherd/$aoe_abft_disk${root#aoe:abft}"
        rootok=1
        ;;
    aoe:e*)
        root="block:/dev/etherd/${root#aoe:}"
        rootok=1
        ;;
    /dev/etherd/e*)
        root="block:${root#block:}"
        rootok=1
        ;;
    *)
        [ -n "$aoe_abft_disk" ] || getarg rd.aoe.iface= > /dev/null || getargbool 0 rd.aoe \
            || return 0
        ;;
esac

aoe_dev=""
[ "${root#block:/dev/etherd/}" != "$root" ] && aoe_dev="${root#block:}"
echo "$aoe_dev" > /tmp/aoe.root

# Interfaces and MACs AoE may use; empty means every interface.
aoe_ifaces=$(getarg rd.aoe.iface=)
[ -z "$aoe_ifaces" ] && aoe_ifaces=$aoe_abft_mac
if [ -z "$aoe_ifaces" ] && aoe_bootif=$(getarg BOOTIF=); then
    # PXE's BOOTIF=01-52-54-00-12-34-56: hardware type 01, then the MAC
    aoe_ifaces=$(echo "${aoe_bootif#01-}" | tr 'A-F-' 'a-f:')
fi
echo "$aoe_ifaces" | tr ',' ' ' > /tmp/aoe.allowed

aoe_clock_start

[ -n "$aoe_dev" ] && wait_for_dev "$aoe_dev"
# keep the network up until root is unmounted at shutdown
need_shutdown
unset aoe_abft_disk aoe_abft_mac
unset aoe_dev aoe_ifaces aoe_bootif aoe_now
