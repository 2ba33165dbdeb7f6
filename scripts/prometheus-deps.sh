#!/usr/bin/env bash
# tests/deploy_dashboards.rs checks deploy/prometheus/alerts.yml with promtool (syntax and
# unit tests of the rules) and runs its own Prometheus server on 127.0.0.1 to evaluate the
# dashboard's and KEDA's queries against a real esmd. Both come from Debian's `prometheus`
# package (/usr/bin/promtool, /usr/bin/prometheus). Installs it when either is missing;
# fails (no skip) when it cannot.
# Idempotent: does nothing when both are there, and says so.
set -euo pipefail

have() { command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; }

if have; then
  echo "prometheus-deps: $(promtool --version 2>&1 | head -1) and prometheus already installed"
  exit 0
fi
command -v apt-get >/dev/null || { echo "prometheus-deps: no apt-get; install promtool and prometheus (Debian package prometheus) yourself, or set ESMD_PROMTOOL and ESMD_PROMETHEUS" >&2; exit 1; }
echo "prometheus-deps: installing the Debian package prometheus (promtool, prometheus)"
export DEBIAN_FRONTEND=noninteractive
# Without recommends: node-exporter and the web console assets are not needed.
if ! apt-get install -y --no-install-recommends prometheus; then
  apt-get update
  apt-get install -y --no-install-recommends prometheus
fi
# The package enables a system-wide server on :9090; the tests start their own on a free
# loopback port and need none listening on every interface.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
  echo "prometheus-deps: stopping and disabling the package's prometheus service"
  systemctl disable --now prometheus || true
fi
if ! have; then
  echo "prometheus-deps: promtool or prometheus still missing after the install" >&2
  exit 1
fi
echo "prometheus-deps: installed $(promtool --version 2>&1 | head -1)"
