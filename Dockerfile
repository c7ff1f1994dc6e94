# dutycard server image.
#
#   docker build -t dutycard .
#   docker run --rm -p 8080:8080 \
#     -e DUTYCARD_SERVER__AUTH__MODE=static \
#     -e DUTYCARD_SERVER__AUTH__TOKENS_FILE=/run/secrets/dutycard-tokens.toml \
#     -e DUTYCARD_PAGERDUTY__API_TOKEN_FILE=/run/secrets/pagerduty-token \
#     -v "$PWD/secrets:/run/secrets:ro" dutycard
#
# Configuration comes from the environment (DUTYCARD_<SECTION>__<KEY>, see
# config/default.toml, which is compiled into the binary) or from a file
# mounted and passed with `--config`. Not built in CI (CI reaches package
# registries only, not image registries).
#
# Two or more replicas: give each the same DUTYCARD_SHARED__REDIS_URL and
# DUTYCARD_SHARED__REPLICAS=<how many> (one PagerDuty budget, shared cards,
# invalidation everywhere), and a Postgres store (DUTYCARD_STORE__URL);
# docker-compose.yml shows two replicas with Redis and Postgres.

# --- build stage: dependencies are compiled in their own cached layer -------
FROM rust:1-slim-bookworm AS chef
# Native build tools. rustls's crypto provider (aws-lc-rs, through
# aws-lc-sys) compiles AWS-LC from C sources: on x86_64/aarch64 Linux that
# needs only a C/C++ compiler (the slim image ships gcc, not g++); CMake is
# what aws-lc-sys falls back to on other targets. (libclang would only be
# needed for targets without pre-generated bindings.)
RUN apt-get update \
    && apt-get install -y --no-install-recommends g++ make cmake \
    && rm -rf /var/lib/apt/lists/*
# cargo-chef turns the workspace's manifests into a "recipe" so that
# dependencies rebuild only when Cargo.toml/Cargo.lock change. Pinned, so a
# new cargo-chef release cannot change the build unannounced.
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /app

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /app/recipe.json recipe.json
RUN cargo chef cook --release --locked -p dutycard-server --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked -p dutycard-server --bin dutycard

# --- runtime stage: slim, non-root ------------------------------------------
FROM debian:bookworm-slim AS runtime
# CA certificates: the PagerDuty client verifies TLS with the system roots.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin dutycard \
    && mkdir -p /var/lib/dutycard && chown 10001 /var/lib/dutycard
COPY --from=builder /app/target/release/dutycard /usr/local/bin/dutycard
USER 10001
# Listen on all interfaces inside the container; everything else keeps the
# defaults of config/default.toml unless set at `docker run`.
ENV DUTYCARD_SERVER__HOST=0.0.0.0 \
    DUTYCARD_SERVER__PORT=8080 \
    DUTYCARD_SERVER__LOG_FORMAT=json \
    DUTYCARD_STORE__DATA_DIR=/var/lib/dutycard \
    RUST_LOG=info
# The embedded store (SQLite, entity mappings and settings) lives here; mount
# a volume to keep it, or set DUTYCARD_STORE__URL to a Postgres.
VOLUME /var/lib/dutycard
EXPOSE 8080
# SIGTERM (docker stop) drains in-flight requests for
# server.shutdown_timeout_secs before exiting.
STOPSIGNAL SIGTERM
CMD ["dutycard", "serve"]
