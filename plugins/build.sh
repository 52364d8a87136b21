#!/usr/bin/env sh
# Builds the bundled job plugins as components and installs them into the folder given
# (default ./plugins-dist), each written to a temporary name and renamed into place, the way
# the host expects plugins to be dropped in. Used by `just plugins` and the Dockerfile.
set -eu
out="${1:-plugins-dist}"
bundled="hello stuck-run-recovery role-expiry-check document-expiry-check run-orphan-cleanup
trigger-workflow log-retention audit-checkpoint deliver-scheduled-report escalation-reminder
escalation-reassignment entitlement-reconciliation"

# rust-toolchain.toml lists the target, but rustup adds it by itself only when it installs the
# toolchain; a toolchain installed before needs it added once.
if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed | grep -qx wasm32-wasip2; then
  rustup target add wasm32-wasip2
fi

packages=""
for name in $bundled; do packages="$packages -p $name"; done
# shellcheck disable=SC2086 # one -p per package
cargo build --release --locked --target wasm32-wasip2 $packages
mkdir -p "$out"
for name in $bundled; do
  file=$(echo "$name" | tr - _)
  cp "target/wasm32-wasip2/release/$file.wasm" "$out/.$name.wasm.tmp"
  mv "$out/.$name.wasm.tmp" "$out/$name.wasm"
done
