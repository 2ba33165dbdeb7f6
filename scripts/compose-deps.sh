#!/usr/bin/env bash
# Installs docker-compose 1.29 (PyPI) into target/test-tools/compose-venv so the tests can
# validate docker-compose.yml offline (`docker-compose config`); no Docker engine is needed.
# Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/test-tools/compose-venv
if [ -x "$venv/bin/docker-compose" ] && "$venv/bin/docker-compose" version >/dev/null 2>&1; then
  echo "docker-compose: already installed in $venv"
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip wheel
# PyYAML 5.4.1 (docker-compose 1.29 needs <6) does not build with Cython 3.
"$venv/bin/pip" install --quiet "cython<3" "setuptools<70"
"$venv/bin/pip" install --quiet --no-build-isolation "PyYAML==5.4.1"
"$venv/bin/pip" install --quiet "docker-compose==1.29.2"
"$venv/bin/docker-compose" version
