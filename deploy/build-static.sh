#!/usr/bin/env bash
# Build the statically linked flock-netpol binary: the ONE command the
# Containerfile and deploy/validate.sh both run, so CI checks what ships.
#
# No musl target can be installed on the build machines (only crates and
# Debian packages are reachable), so this is glibc linked statically:
# `-C target-feature=+crt-static` with an explicit `--target`, which keeps
# build scripts and proc macros (bindgen loads libclang at build time)
# dynamically linked while the binary itself is static.
#
# Usage: deploy/build-static.sh   (prints the binary's path on stdout)
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-gnu
RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --release --locked --target "$target" --bin flock-netpol >&2
echo "target/$target/release/flock-netpol"
