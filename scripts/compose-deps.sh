#!/usr/bin/env bash
# Installs docker-compose 1.29.2 (the PyPI one) into target/test-tools/compose-venv, for the
# test that validates docker-compose.yml offline (`docker-compose config -q`, no daemon needed).
# Idempotent: does nothing when the pinned version is already there, and says so.
#
#   target/test-tools/compose-venv/bin/docker-compose
#
# tests/config_compose.rs finds it there, or at $ESMD_DOCKER_COMPOSE. A missing binary fails
# that test with a pointer to this script; it never skips it.
set -euo pipefail
cd "$(dirname "$0")/.."

# Pinned: the last Python release of docker-compose; validates the file against the Compose
# schema without a Docker daemon, on any machine with Python 3.
COMPOSE_VERSION="1.29.2"
# docker-compose 1.29 needs PyYAML < 6. PyYAML 5.4.1 has no wheel for Python >= 3.11 and its
# sdist does not build with Cython 3, so it is built with Cython < 3 and no build isolation.
PYYAML_VERSION="5.4.1"

TOOLS="target/test-tools"
VENV="$TOOLS/compose-venv"
PYTHON="${PYTHON:-python3}"
PIP=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)

installed_compose_version() {
  # Prints the version only if the CLI actually starts (imports all its dependencies).
  "$VENV/bin/docker-compose" version --short 2>/dev/null || true
}

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "compose-deps: creating venv $VENV"
  mkdir -p "$TOOLS"
  "$PYTHON" -m venv "$VENV"
else
  echo "compose-deps: venv $VENV present"
fi

have="$(installed_compose_version)"
if [[ "$have" == "$COMPOSE_VERSION" ]]; then
  echo "compose-deps: docker-compose $COMPOSE_VERSION already installed"
else
  echo "compose-deps: installing docker-compose==$COMPOSE_VERSION (found: ${have:-none})"
  if ! "$VENV/bin/python" -c "import yaml, sys; sys.exit(0 if yaml.__version__ == '$PYYAML_VERSION' else 1)" 2>/dev/null; then
    "${PIP[@]}" "cython<3" wheel "setuptools<70"
    "${PIP[@]}" --no-build-isolation "PyYAML==$PYYAML_VERSION"
  fi
  "${PIP[@]}" "docker-compose==$COMPOSE_VERSION" "PyYAML==$PYYAML_VERSION"
  have="$(installed_compose_version)"
  if [[ "$have" != "$COMPOSE_VERSION" ]]; then
    echo "compose-deps: docker-compose install failed (found: ${have:-none})" >&2
    "$VENV/bin/docker-compose" version >&2 || true
    exit 1
  fi
  echo "compose-deps: installed docker-compose $COMPOSE_VERSION"
fi
echo "compose-deps: docker-compose at $VENV/bin/docker-compose"
