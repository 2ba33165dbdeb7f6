#!/usr/bin/env bash
# Installs kinesis-local, the Kinesis emulator the resharding tests run against (moto keeps
# writing to a split shard's closed parent; kinesis-local routes to the children and ends closed
# shards with ChildShards), into target/test-tools/kinesis-local. Idempotent: does nothing when
# the pinned version is already there.
#
#   kinesis-local  target/test-tools/kinesis-local/node_modules/kinesis-local
#   pin.js         loaded with `node -r` so it listens on 127.0.0.1 only (it has no host option)
#
# Tests find it there, or at $ESMD_KINESIS_LOCAL (the package directory). A missing package
# fails those tests with a pointer to this script; it never skips them.
set -euo pipefail
cd "$(dirname "$0")/.."

# Pinned: 0.5.2 was verified with tests/kinesis.rs (SplitShard, MergeShards, ChildShards).
VERSION="0.5.2"
ROOT="target/test-tools/kinesis-local"
PKG="$ROOT/node_modules/kinesis-local"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "kinesis-deps: installing nodejs and npm (Debian packages)"
  apt-get install -y -q nodejs npm >/dev/null || { echo "kinesis-deps: cannot install nodejs/npm" >&2; exit 1; }
fi

installed_version() {
  node -e "console.log(require('./$PKG/package.json').version)" 2>/dev/null || true
}

if [[ "$(installed_version)" == "$VERSION" ]]; then
  echo "kinesis-deps: kinesis-local $VERSION already installed at $PKG"
else
  echo "kinesis-deps: installing kinesis-local $VERSION into $ROOT"
  mkdir -p "$ROOT"
  npm install --prefix "$ROOT" --no-audit --no-fund --silent "kinesis-local@$VERSION"
  if [[ "$(installed_version)" != "$VERSION" ]]; then
    echo "kinesis-deps: install failed (found: $(installed_version))" >&2
    exit 1
  fi
fi
echo "kinesis-deps: kinesis-local at $PKG"
