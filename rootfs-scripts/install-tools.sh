#!/usr/bin/env bash
# Put the lab's own in-container programs into a root filesystem.
#
#   rootfs-scripts/install-tools.sh DIR PROGRAM...
#
# Each PROGRAM goes to DIR/usr/local/bin together with the shared libraries
# it needs, so it runs whatever the rootfs itself contains.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

target=${1:-}
[ -d "$target" ] || die "usage: install-tools.sh DIR PROGRAM... (DIR must be a built rootfs)"
shift
for program in "$@"; do
    [ -x "$program" ] || die "$program is not an executable file: build it with cargo build"
    copy_with_libs "$target" "$program" "/usr/local/bin/$(basename "$program")"
done
