#!/usr/bin/env bash
# Regenerate what the book shows that the lab computes: the scorecard tables
# (from a real `lab tour`), chapter 09's anatomy (from a real container, by
# `lab anatomy`) and the terminal transcripts (insta snapshots written by the
# tests). Needs root, like the lab itself.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --quiet
rootfs=$(mktemp -d /tmp/container-lab-book.XXXXXX)
# ch05 enters the rootfs as an unprivileged host uid: mktemp makes it 0700.
chmod 755 "$rootfs"
trap 'rm -rf "$rootfs"' EXIT
.cargo/as-root target/debug/lab rootfs "$rootfs" >/dev/null
.cargo/as-root target/debug/lab tour --rootfs "$rootfs" --book book/src/generated >/dev/null
.cargo/as-root target/debug/lab anatomy --rootfs "$rootfs" --book book/src/generated
INSTA_UPDATE=always cargo test --quiet
