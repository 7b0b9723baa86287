#!/usr/bin/env bash
# Build a tiny root filesystem around one static busybox binary.
#
#   rootfs-scripts/busybox.sh DIR
#
# Needs a statically linked busybox (Debian/Ubuntu: apt-get install
# busybox-static). Every applet becomes a symlink to /bin/busybox.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

target=${1:-}
require_target busybox.sh "$target"

busybox=${BUSYBOX:-$(command -v busybox || true)}
[ -n "$busybox" ] || die "busybox not found: apt-get install busybox-static"
if ldd "$busybox" >/dev/null 2>&1; then
    die "$busybox is dynamically linked and would need the host's libraries: apt-get install busybox-static"
fi

mkdir -p "$target"/{bin,sbin,usr/bin,usr/sbin}
make_skeleton "$target" busybox
copy_file "$target" "$busybox" /bin/busybox
count=0
for applet in $("$busybox" --list-full); do
    [ "$applet" = bin/busybox ] && continue
    link=$(inside "$target" "/$applet")
    mkdir -p "$(dirname "$link")"
    ln -sfn /bin/busybox "$link"
    count=$((count + 1))
done
echo "busybox rootfs ready in $target ($count applets)"
