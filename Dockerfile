# floh: the host and the bundled plugins, built with the pinned toolchain, run as non-root.
#   docker build -t floh .
#   docker run -p 3000:3000 -e DATABASE_URL=… -e REDIS_URL=… -v floh-plugins:/plugins floh

FROM rust:1.95-bookworm AS build
WORKDIR /src
RUN rustup target add wasm32-wasip2
COPY . .
RUN cargo build --release --locked -p floh \
    && plugins/build.sh /out/plugins \
    && cp target/release/floh /out/floh

FROM debian:bookworm-slim
# curl serves the HEALTHCHECK; ca-certificates the TLS connections to databases, SMTP, S3.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/floh --create-home floh \
    && mkdir -p /plugins /var/cache/floh \
    && chown floh:floh /plugins /var/cache/floh
COPY --from=build /out/floh /usr/local/bin/floh
COPY --from=build --chown=floh:floh /out/plugins/ /plugins/
COPY --chown=floh:floh floh.example.toml /etc/floh/floh.toml

ENV FLOH_ENV=production \
    FLOH_CONFIG=/etc/floh/floh.toml \
    BIND_ADDRESS=0.0.0.0 \
    PORT=3000 \
    PLUGINS_DIR=/plugins \
    PLUGIN_CACHE_DIR=/var/cache/floh \
    AUDIT_CHECKPOINT_PATH=/var/lib/floh/audit-checkpoints
# Operators replace or add plugins here; the bundled ones are the default content.
VOLUME ["/plugins"]
USER 10001
WORKDIR /var/lib/floh
EXPOSE 3000
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["sh", "-c", "curl -fsS http://127.0.0.1:${PORT}/api/health/live || exit 1"]
ENTRYPOINT ["/usr/local/bin/floh"]
CMD ["serve"]
