# esmd's image: the release binary with every default connector (Kafka, RabbitMQ, SQS, Kinesis,
# DynamoDB Streams) on Debian bookworm, running as an unprivileged user.
#
#   docker build -t esmd .
#   docker run --rm esmd demo                                              # needs no servers
#   docker run --rm -v "$PWD/config:/etc/esmd:ro" esmd validate -c /etc/esmd/quickstart.toml
#
# tests/deploy_docker.rs checks this file (no Docker needed); docker-compose.yml builds it.

# The toolchain the project is developed and tested with; Cargo.lock pins every crate.
FROM rust:1.95-bookworm AS build

# rdkafka-sys compiles librdkafka from source with its ./configure and make (no cmake), linking
# the system's OpenSSL (TLS, SASL/SCRAM) and zlib, which it finds through pkg-config. The rust
# image has most of this already; naming it keeps the build working if the base image slims.
# Versions are left to bookworm's security updates: a pinned Debian version disappears from
# the archive with the next one and breaks the build.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential pkg-config libssl-dev zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# Only what cargo reads: every workspace member's manifest and sources, and the benches the root
# manifest declares (cargo refuses a manifest whose declared targets are missing).
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY connectors ./connectors
COPY crates ./crates
COPY benches ./benches
RUN cargo build --release --locked

FROM debian:bookworm-slim

# The binary links libssl3 and zlib dynamically (librdkafka); ca-certificates is what TLS to AWS
# and to brokers verifies against.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libssl3 zlib1g \
    && rm -rf /var/lib/apt/lists/*

# A fixed numeric uid, so Kubernetes' runAsNonRoot can verify it and a bind-mounted state
# directory can be given to it. The state directory exists and belongs to it before the volume
# is declared, so a new named volume starts out writable by esmd.
RUN groupadd --system --gid 10001 esmd \
    && useradd --system --uid 10001 --gid esmd --home-dir /var/lib/esmd --no-create-home --shell /usr/sbin/nologin esmd \
    && mkdir -p /var/lib/esmd /etc/esmd \
    && chown esmd:esmd /var/lib/esmd

COPY --from=build /src/target/release/esmd /usr/local/bin/esmd

# Configs read these (`${ESMD_STATE_DIR:-…}`, `${ESMD_ADMIN_LISTEN:-…}`, see
# config/compose/esmd.toml); esmd itself does not. In a container the admin endpoint has to
# listen beyond the container's loopback for a published port to reach it; publish it on the
# host's loopback (-p 127.0.0.1:9464:9464) unless it is meant to be reachable. esmd warns at
# start about an admin address beyond loopback unless the config says `allow_remote = true`.
ENV ESMD_STATE_DIR=/var/lib/esmd \
    ESMD_ADMIN_LISTEN=0.0.0.0:9464

USER 10001:10001
# Relative paths in a config (file: destinations, ./esmd-state) land on the volume too.
WORKDIR /var/lib/esmd
VOLUME ["/var/lib/esmd"]
EXPOSE 9464

# esmd has no health subcommand and the slim image has no curl: bash's /dev/tcp sends the
# request. The port is the one ESMD_ADMIN_LISTEN names (9464 when unset), the variable the
# config's [admin] listen is expected to read: a config with a fixed other port needs
# ESMD_ADMIN_LISTEN set to match, or the container is reported unhealthy.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
    CMD ["bash", "-c", "listen=${ESMD_ADMIN_LISTEN:-0.0.0.0:9464} && exec 3<>\"/dev/tcp/127.0.0.1/${listen##*:}\" && printf 'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && IFS= read -r -t 4 status <&3 && [[ $status == HTTP/1.[01]' 200'* ]]"]

ENTRYPOINT ["esmd"]
# Mount a config there (-v ./my.toml:/etc/esmd/esmd.toml:ro), or name another one:
# `docker run esmd validate -c …`, `docker run esmd seed -c …`.
CMD ["run", "-c", "/etc/esmd/esmd.toml"]
