# Tasks for working on floh. `just --list` shows them; each is plain cargo underneath.

plugins_dir := "plugins-dist"

# Build the bundled plugins and the host, then start it (grants: FLOH_CONFIG or floh.example.toml).
up: plugins
    FLOH_CONFIG="${FLOH_CONFIG:-floh.example.toml}" cargo run --release

# Build every bundled plugin and copy it into the development PLUGINS_DIR, write-then-rename.
plugins:
    plugins/build.sh {{ plugins_dir }}

# Run the whole test suite (tests whose servers are missing say NOT RUN; README.md lists them).
test:
    cargo test --workspace

# Benchmark the plugin sandbox (per-job overhead, memory) and the queue (jobs/s next to Node's).
bench: plugins
    cd tests/node && npm ci --no-audit --no-fund --silent
    cargo bench -p floh --bench plugin_runtime
    cargo bench -p floh --bench queue_throughput

# Formatting and lints, as CI runs them.
check:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Create the database if needed and apply migrations.
migrate:
    cargo run --release -- migrate

# Print the effective configuration, secrets redacted.
check-config:
    cargo run --release -- check-config

# Validate a plugin file the way the host would.
check-plugin file:
    cargo run --release -- plugins check {{ file }}

# Everything CI does, on this machine.
ci:
    .ci/run
