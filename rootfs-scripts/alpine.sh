#!/usr/bin/env bash
# Build a root filesystem from Alpine Linux's official minirootfs tarball.
#
#   rootfs-scripts/alpine.sh DIR
#
# Downloads the tarball (needs the network, or ALPINE_TARBALL=/path/to/file
# for a copy you already have) and refuses it unless its SHA-256 matches the
# one pinned here for the machine's architecture.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

target=${1:-}
require_target alpine.sh "$target"

version=3.20.3
arch=$(uname -m)
case "$arch" in
    x86_64) sha256=d4e6fd67dcf75e40c451560ac7265166c2b72a0f38ddc9aae756a7de3d1efa0c ;;
    aarch64) sha256=041fa34a81788242df9e78fa69b97ab45b8ec47ddbf88864755610414a7bf3de ;;
    *) die "no pinned Alpine $version checksum for $arch: use host.sh or busybox.sh" ;;
esac
name=alpine-minirootfs-$version-$arch.tar.gz
url=https://dl-cdn.alpinelinux.org/alpine/v${version%.*}/releases/$arch/$name

tarball=${ALPINE_TARBALL:-}
if [ -z "$tarball" ]; then
    tarball=$(mktemp --suffix=.tar.gz)
    trap 'rm -f "$tarball"' EXIT
    echo "downloading $url"
    if command -v curl >/dev/null; then
        curl -fsSL --retry 2 -o "$tarball" "$url" || die "download failed: $url (offline? use host.sh)"
    elif command -v wget >/dev/null; then
        wget -q -O "$tarball" "$url" || die "download failed: $url (offline? use host.sh)"
    else
        die "neither curl nor wget is installed"
    fi
fi
echo "$sha256  $tarball" | sha256sum --check --quiet - ||
    die "$tarball does not have the pinned SHA-256 $sha256: refusing to unpack it"
tar -xzf "$tarball" -C "$target" --numeric-owner
make_skeleton "$target" alpine
echo "alpine $version rootfs ready in $target"
