#!/usr/bin/env bash
# The RabbitMQ tests use the machine's broker at 127.0.0.1:5672 (guest/guest). Starts it when
# it is down; fails (no skip) when it cannot be started.
set -euo pipefail
if rabbitmqctl -q status >/dev/null 2>&1; then
  echo "rabbitmq-deps: RabbitMQ is running"
  exit 0
fi
command -v rabbitmq-server >/dev/null || { echo "rabbitmq-deps: rabbitmq-server is not installed (Debian package rabbitmq-server)" >&2; exit 1; }
echo "rabbitmq-deps: starting rabbitmq-server -detached"
rabbitmq-server -detached
for _ in $(seq 1 90); do
  if rabbitmqctl -q status >/dev/null 2>&1 && rabbitmqctl -q await_startup >/dev/null 2>&1; then
    echo "rabbitmq-deps: RabbitMQ is running"
    exit 0
  fi
  sleep 1
done
echo "rabbitmq-deps: RabbitMQ did not start within 90 s" >&2
exit 1
