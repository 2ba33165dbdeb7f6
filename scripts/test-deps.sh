#!/usr/bin/env bash
# Installs the servers the integration tests start themselves, into target/test-tools.
# Idempotent: does nothing when the pinned versions are already there, and says so.
#
#   moto server  target/test-tools/venv/bin/moto_server   (AWS emulator: Lambda, IAM, SQS, ...)
#
# Tests find moto_server there, or at $ESMD_MOTO_SERVER. A missing binary fails those tests
# with a pointer to this script; it never skips them.
set -euo pipefail
cd "$(dirname "$0")/.."

# Pinned so every checkout tests against the same emulator behaviour. 5.2.5 was verified
# with tests/invoke_lambda.rs (Lambda without docker, lambda-simple canned responses).
MOTO_VERSION="5.2.5"

TOOLS="target/test-tools"
VENV="$TOOLS/venv"
PYTHON="${PYTHON:-python3}"

installed_moto_version() {
  # Prints the installed version only if moto and its server extra (flask) are importable.
  "$VENV/bin/python" - <<'EOF' 2>/dev/null || true
import importlib.metadata as m
import flask, flask_cors  # the [server] extra
print(m.version("moto"))
EOF
}

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "test-deps: creating venv $VENV"
  mkdir -p "$TOOLS"
  "$PYTHON" -m venv "$VENV"
else
  echo "test-deps: venv $VENV present"
fi

have="$(installed_moto_version)"
if [[ "$have" == "$MOTO_VERSION" && -x "$VENV/bin/moto_server" ]]; then
  echo "test-deps: moto[server] $MOTO_VERSION already installed"
else
  echo "test-deps: installing moto[server]==$MOTO_VERSION (found: ${have:-none})"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "moto[server]==$MOTO_VERSION"
  have="$(installed_moto_version)"
  if [[ "$have" != "$MOTO_VERSION" || ! -x "$VENV/bin/moto_server" ]]; then
    echo "test-deps: moto install failed (found: ${have:-none})" >&2
    exit 1
  fi
  echo "test-deps: installed moto[server] $MOTO_VERSION"
fi
echo "test-deps: moto_server at $VENV/bin/moto_server"
