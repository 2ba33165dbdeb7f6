#!/usr/bin/env bash
# Installs the servers the integration tests start themselves, and the tools they run, into
# target/test-tools.
# Idempotent: does nothing when the pinned versions are already there, and says so.
#
#   moto server          target/test-tools/venv/bin/moto_server          (AWS emulator: Lambda, IAM, SQS, ...)
#   kubernetes-validate  target/test-tools/venv/bin/kubernetes-validate  (offline schema check of deploy/kubernetes/)
#
# Tests find moto_server there, or at $ESMD_MOTO_SERVER, and kubernetes-validate there, or at
# $ESMD_KUBERNETES_VALIDATE. A missing binary fails those tests with a pointer to this script;
# it never skips them.
set -euo pipefail
cd "$(dirname "$0")/.."

# Pinned so every checkout tests against the same emulator behaviour. 5.2.5 was verified
# with tests/invoke_lambda.rs (Lambda without docker, lambda-simple canned responses).
MOTO_VERSION="5.2.5"
# Pinned so the manifests are checked against the same schemas everywhere. The wheel ships
# Kubernetes' JSON schemas (1.25 to 1.37, strict variants too) and validates from them with
# no network; tests/deploy_kubernetes.rs checks against 1.30 and 1.37 with --strict.
KUBERNETES_VALIDATE_VERSION="1.37.0"

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

installed_kubernetes_validate_version() {
  # Prints the version only if the CLI actually starts (imports all its dependencies).
  "$VENV/bin/kubernetes-validate" --version 2>/dev/null || true
}

have="$(installed_kubernetes_validate_version)"
if [[ "$have" == "$KUBERNETES_VALIDATE_VERSION" ]]; then
  echo "test-deps: kubernetes-validate $KUBERNETES_VALIDATE_VERSION already installed"
else
  echo "test-deps: installing kubernetes-validate==$KUBERNETES_VALIDATE_VERSION (found: ${have:-none})"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
  have="$(installed_kubernetes_validate_version)"
  if [[ "$have" != "$KUBERNETES_VALIDATE_VERSION" ]]; then
    echo "test-deps: kubernetes-validate install failed (found: ${have:-none})" >&2
    exit 1
  fi
  echo "test-deps: installed kubernetes-validate $KUBERNETES_VALIDATE_VERSION"
fi
echo "test-deps: kubernetes-validate at $VENV/bin/kubernetes-validate"
