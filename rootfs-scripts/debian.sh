#!/usr/bin/env bash
# Build a minimal Debian root filesystem with debootstrap.
#
#   rootfs-scripts/debian.sh DIR [SUITE [MIRROR]]
#
# Needs debootstrap (apt-get install debootstrap) and a reachable Debian
# mirror; SUITE defaults to stable. Slow (minutes) but gives a real distro
# with apt inside.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

target=${1:-}
require_target debian.sh "$target"
suite=${2:-stable}
mirror=${3:-http://deb.debian.org/debian}

command -v debootstrap >/dev/null || die "debootstrap not found: apt-get install debootstrap"
if [ -x "$target/usr/bin/apt-get" ]; then
    echo "debian rootfs already in $target (remove the directory to rebuild it)"
else
    debootstrap --variant=minbase "$suite" "$target" "$mirror" ||
        die "debootstrap $suite into $target failed (see the log in $target/debootstrap/)"
fi
make_skeleton "$target" debian
echo "debian $suite rootfs ready in $target"
