#!/usr/bin/env bash
# Build the lab's default root filesystem from the host's own programs.
#
#   rootfs-scripts/host.sh DIR
#
# Copies a shell, coreutils-class tools, their shared libraries and the
# dynamic loader (found with ldd) and a few /etc files into DIR. Needs no
# network and no extra packages; safe to run again (it overwrites what it
# copied and keeps anything else in DIR).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

target=${1:-}
require_target host.sh "$target"

# A merged /usr, like Debian 12, Fedora and Arch: /bin, /sbin and /lib are
# relative symlinks into /usr, so host paths copy to the same paths inside.
mkdir -p "$target"/usr/{bin,sbin,lib,lib64}
for dir in bin sbin lib lib64; do
    if [ ! -e "$target/$dir" ] && [ ! -L "$target/$dir" ]; then
        ln -s "usr/$dir" "$target/$dir"
    fi
done
make_skeleton "$target" host

# sh is required; the rest is what a student reaches for in a shell.
required=(sh)
wanted=(bash ls cat echo printf mkdir rmdir rm cp mv ln touch chmod chown
    readlink realpath stat id whoami hostname uname env sleep true false
    grep sed head tail wc sort uniq cut tr tee find xargs dd df du
    ps kill pwd date test expr basename dirname mount umount ip nproc free)

copied=()
for tool in "${required[@]}" "${wanted[@]}"; do
    if ! path=$(type -P "$tool"); then
        case " ${required[*]} " in
            *" $tool "*) die "the host has no $tool: install it (apt-get install dash) and run again" ;;
        esac
        continue
    fi
    # Install under /usr/bin or /usr/sbin whatever the host's layout is.
    case "$path" in
        */sbin/*) dest=/usr/sbin/$tool ;;
        *) dest=/usr/bin/$tool ;;
    esac
    copy_with_libs "$target" "$path" "$dest"
    copied+=("$tool")
done

echo "host rootfs ready in $target (${#copied[@]} programs: ${copied[*]})"
