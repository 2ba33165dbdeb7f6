#!/usr/bin/env bash
# Installs tansu, the independent Kafka-protocol broker the Kafka tests run against, into
# target/test-tools/tansu. Idempotent: does nothing when the pinned version is already there.
#
#   tansu broker  target/test-tools/tansu/bin/tansu
#   socat, openssl (Debian packages): the TLS test puts a TLS-terminating proxy in front of tansu
#
# Tests find it there, or at $ESMD_TANSU. A missing binary fails those tests with a pointer to
# this script; it never skips them. A cold install compiles for about 12 minutes (half an hour
# on a busy machine); the binary is then kept as ~/.cargo/bin/tansu-<version> for later clones.
set -euo pipefail
cd "$(dirname "$0")/.."

# Pinned: 0.6.0 with sqlite storage was verified with tests/kafka_tansu.rs. Its
# memory storage was seen to skip and duplicate records when a consumer fetches from the middle
# of a record batch, so the tests use sqlite only.
TANSU_VERSION="0.6.0"
ROOT="target/test-tools/tansu"
BIN="$ROOT/bin/tansu"

for tool in socat openssl; do
  if ! command -v "$tool" >/dev/null; then
    echo "kafka-deps: installing $tool (Debian package)"
    apt-get install -y -q "$tool" >/dev/null || { echo "kafka-deps: cannot install $tool" >&2; exit 1; }
  fi
done

installed_version() {
  [[ -f "$ROOT/.version" ]] && cat "$ROOT/.version" || true
}

if [[ -x "$BIN" && "$(installed_version)" == "$TANSU_VERSION" ]]; then
  echo "kafka-deps: tansu $TANSU_VERSION already installed at $BIN"
  exit 0
fi

# A fresh clone (CI) has an empty target/: reuse the binary an earlier install left beside
# cargo's own tools instead of compiling it again.
CACHE="${CARGO_HOME:-$HOME/.cargo}/bin/tansu-$TANSU_VERSION"
if [[ -x "$CACHE" && "$("$CACHE" --version 2>/dev/null)" == "tansu $TANSU_VERSION" ]]; then
  mkdir -p "$ROOT/bin"
  cp "$CACHE" "$BIN"
  echo "$TANSU_VERSION" > "$ROOT/.version"
  echo "kafka-deps: tansu $TANSU_VERSION copied from $CACHE to $BIN"
  exit 0
fi

echo "kafka-deps: installing tansu $TANSU_VERSION into $ROOT (cold: ~12 minutes)"
mkdir -p "$ROOT"
# Its own target dir, so the workspace's Cargo.lock and build cache are not disturbed.
CARGO_TARGET_DIR="target/test-tools/tansu-build" \
  cargo install tansu --version "$TANSU_VERSION" --locked --no-default-features \
  --features libsql --root "$ROOT" --quiet
echo "$TANSU_VERSION" > "$ROOT/.version"
mkdir -p "$(dirname "$CACHE")" && cp "$BIN" "$CACHE" || echo "kafka-deps: could not cache tansu at $CACHE (next clone compiles it again)"
# The build tree is only needed to rebuild; drop it to keep target/ small.
rm -rf target/test-tools/tansu-build
echo "kafka-deps: tansu at $BIN"
