# Tasks for working on floh. `just --list` shows them; each is plain cargo underneath, so
# nothing here is needed to build, run or test floh.

# Build the host and start it (PostgreSQL and Redis at the defaults of docs/configuration.md).
up:
    cargo run --release

# Run the whole test suite (needs PostgreSQL and Redis on 127.0.0.1, like CI).
test:
    cargo test --workspace

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

# Everything CI does, on this machine.
ci:
    .ci/run
