# Shared helpers for the rootfs scripts. Sourced, not run.
# shellcheck shell=bash

die() {
    echo "error: $*" >&2
    exit 1
}

# usage_target SCRIPT ARG: check the one argument every script takes.
require_target() {
    local script=$1 target=${2:-}
    [ -n "$target" ] || die "usage: $script DIR (the directory to build the root filesystem in)"
    [ "$target" != / ] || die "refusing to build a root filesystem over the host's /"
    mkdir -p "$target" || die "cannot create $target"
}

# A path inside the rootfs, checked to stay inside it: a rootfs may hold an
# absolute symlink (lib -> /usr/lib) that, followed from the host, would
# make us write into the host's own /usr/lib.
inside() {
    local root=$1 path=$2 real_root real_dest
    real_root=$(realpath "$root")
    real_dest=$(realpath -m "$root/$path")
    case "$real_dest" in
        "$real_root" | "$real_root"/*) echo "$real_dest" ;;
        *) die "$root/$path resolves to $real_dest, outside the rootfs: an absolute symlink in the rootfs?" ;;
    esac
}

# copy_file ROOT SRC [DEST]: copy SRC (following symlinks) to DEST inside ROOT.
copy_file() {
    local root=$1 src=$2 dest=${3:-$2} target
    target=$(inside "$root" "$dest")
    mkdir -p "$(dirname "$target")"
    cp -L --remove-destination "$src" "$target" || die "cannot copy $src into $root$dest"
}

# copy_with_libs ROOT BINARY [DEST]: copy a program and every shared library
# and loader ldd says it needs, each to the same path inside ROOT.
copy_with_libs() {
    local root=$1 binary=$2 dest=${3:-$2} lib
    copy_file "$root" "$binary" "$dest"
    # ldd prints "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" and,
    # for the loader, "/lib64/ld-linux-x86-64.so.2 (0x...)". Static programs
    # print "not a dynamic executable" (and exit 1), which leaves nothing to copy.
    for lib in $(ldd "$binary" 2>/dev/null | grep -o '/[^ ]*' || true); do
        [ -e "$lib" ] && copy_file "$root" "$lib"
    done
}

# The directories and /etc files every lab rootfs has.
make_skeleton() {
    local root=$1 variant=$2
    mkdir -p "$root"/{dev,proc,sys,tmp,root,etc,home,run,var/tmp,usr/local/bin}
    chmod 1777 "$root/tmp" "$root/var/tmp"
    chmod 700 "$root/root"
    [ -e "$root/etc/passwd" ] || printf '%s\n' \
        'root:x:0:0:root:/root:/bin/sh' \
        'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >"$root/etc/passwd"
    [ -e "$root/etc/group" ] || printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >"$root/etc/group"
    [ -e "$root/etc/hosts" ] || printf '%s\n' '127.0.0.1 localhost' '::1 localhost' >"$root/etc/hosts"
    [ -e "$root/etc/nsswitch.conf" ] || printf '%s\n' 'passwd: files' 'group: files' 'hosts: files dns' >"$root/etc/nsswitch.conf"
    # Empty placeholders the runtime bind-mounts its own copies over.
    for file in hostname resolv.conf; do
        [ -e "$root/etc/$file" ] || : >"$root/etc/$file"
    done
    echo "$variant" >"$root/etc/container-lab-rootfs"
}
