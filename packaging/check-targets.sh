#!/usr/bin/env bash
# `make check-targets`: `cargo check` of the core and the C library for every target whose
# standard library is installed (`rustup target add <triple>`) besides the host, with zig as the
# C compiler for aws-lc (NASM from Debian for Windows). Proves the Unix-only calls are behind
# `cfg(unix)` without a machine of each kind.
set -euo pipefail
cd "$(dirname "$0")/.."
source packaging/zig.sh
host=$(rustc -vV | sed -n 's/^host: //p')
checked=0
for triple in $(rustup target list --installed); do
  [ "$triple" = "$host" ] && continue
  case $triple in
    x86_64-apple-darwin) zig_target=x86_64-macos ;;
    aarch64-apple-darwin) zig_target=aarch64-macos ;;
    x86_64-pc-windows-gnu) zig_target=x86_64-windows-gnu ;;
    aarch64-unknown-linux-gnu) zig_target=aarch64-linux-gnu.2.17 ;;
    x86_64-unknown-linux-musl) zig_target=x86_64-linux-musl ;;
    *) echo "check-targets: skipping $triple (no zig target known)"; continue ;;
  esac
  use_zig "$triple" "$zig_target"
  echo "==> cargo check --target $triple"
  cargo check -q --locked --target "$triple" -p certmagic -p certmagic-ffi
  checked=$((checked + 1))
done
echo "check-targets: $checked target(s) checked"
