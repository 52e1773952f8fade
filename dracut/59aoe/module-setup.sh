#!/bin/bash
# dracut module: root on ATA over Ethernet (/dev/etherd/eX.Y[pN], served by vblade on a NAS).
# Layer 2 only: links come up without IP, the aoe driver finds the disk, rootfs-block mounts it.

# Is block device MAJ:MIN an AoE disk or a partition of one?
block_is_aoe() {
    [[ $(readlink -f "/sys/dev/block/$1") == */etherd\!* ]]
}

# called by dracut: include on hostonly builds only when root sits on AoE
check() {
    [[ $hostonly ]] || [[ $mount_needs ]] && {
        for_each_host_dev_and_slaves block_is_aoe || return 255
    }
    require_binaries ip modprobe od tr || return 1
    return 0
}

# called by dracut: NIC drivers and block-device root mounting; no IP configuration
depends() {
    echo kernel-network-modules rootfs-block
    # dracut >= 108 moved the initqueue into a module of its own; 059 has none
    # (dracut_module_path echoes its unexpanded glob when there is none: test the directory)
    if type dracut_module_path > /dev/null 2>&1 && [ -d "$(dracut_module_path initqueue)" ]; then
        echo initqueue
    fi
    return 0
}

# called by dracut
installkernel() {
    hostonly='' instmods aoe
}

# called by dracut for --print-cmdline and hostonly_cmdline only: what this host needs on the
# kernel command line, from aoeboot's config
cmdline() {
    local _helper _opts
    _helper=$(aoeboot_helper) || return 0
    _opts=$("$_helper" cmdline 2> /dev/null) && [ -n "$_opts" ] && printf ' %s' "$_opts"
    return 0
}

# aoeboot, wherever the package or pip put it: dracut runs us with its own PATH
# (/usr/sbin:/usr/bin:/sbin:/bin), which lacks pip's /usr/local/bin
aoeboot_helper() {
    local _helper
    for _helper in "$(command -v aoeboot)" /usr/local/bin/aoeboot /usr/local/sbin/aoeboot; do
        [ -x "$_helper" ] && echo "$_helper" && return 0
    done
    return 1
}

# called by dracut
install() {
    inst_multiple ip modprobe od tr
    inst_simple "$moddir/aoeboot-lib.sh" /lib/aoeboot-lib.sh
    inst_hook cmdline 90 "$moddir/parse-aoe.sh"
    inst_hook initqueue/settled 90 "$moddir/aoeboot-settled.sh"
    inst_hook emergency 05 "$moddir/aoeboot-report.sh"
    inst_script "$moddir/aoeboot-up.sh" /sbin/aoeboot-up
    inst_script "$moddir/aoeboot-report.sh" /sbin/aoeboot-report
    inst_script "$moddir/aoe-root.sh" /sbin/aoeroot # netroot handler for root=dhcp
    inst_script "$moddir/aoeboot-rename.sh" "${udevdir:-/lib/udev}/aoeboot-rename"
    inst_simple "$moddir/aoe-initqueue.rules" "${udevrulesdir:-/lib/udev/rules.d}/61-aoe-initqueue.rules"
    inst_simple "$moddir/61-aoeboot.rules" "${udevrulesdir:-/lib/udev/rules.d}/61-aoeboot.rules"
    if dracut_module_included "lvm"; then
        inst_rules "$moddir/64-aoeboot-lvm.rules"
    fi
    if dracut_module_included "systemd-initrd"; then
        inst_script "$moddir/aoe-generator.sh" "$systemdutildir"/system-generators/dracut-aoe-generator
        inst_simple "$moddir/aoe-emergency.conf" \
            "$systemdsystemunitdir/emergency.service.d/50-aoeboot-report.conf"
    fi
    # aoetools' modules-load.d entry would load aoe on every interface at early boot, before
    # rd.aoe.iface= applies; aoeboot-up loads it with the interface list instead.
    rm -f "$initdir/usr/lib/modules-load.d/aoetools.conf" "$initdir/etc/modules-load.d/aoetools.conf"
    bake_cmdline
    dracut_need_initqueue
}

# What this host needs to find its root goes into the image itself (getarg reads
# /etc/cmdline.d like the command line, which still wins where it says otherwise): a boot loader
# tool that knows nothing of AoE may rewrite the entry to root=UUID=... with no rd.aoe.*.
bake_cmdline() {
    local _helper _opts
    if [ -n "${AOEBOOT_INITRAMFS_OPTIONS-}" ]; then # aoeboot's own builds say what to bake
        _opts=$AOEBOOT_INITRAMFS_OPTIONS
    else
        _helper=$(aoeboot_helper) || return 0
        _opts=$("$_helper" cmdline --initramfs 2> /dev/null)
        case $? in
            0) ;;
            1) return 0 ;; # this host does not boot from AoE
            *)
                # shellcheck disable=SC2016 # the backquotes are literal: they quote a command
                dwarn 'aoe: `aoeboot cmdline --initramfs` failed: the image carries no AoE options'
                return 0
                ;;
        esac
    fi
    mkdir -p "$initdir/etc/cmdline.d"
    echo "$_opts" > "$initdir/etc/cmdline.d/50-aoeboot.conf"
}
