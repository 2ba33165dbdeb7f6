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
  # Prints the installed version only if moto, its server extra (flask) and the server script
  # are there.
  [[ -x "$VENV/bin/moto_server" ]] || return 0
  "$VENV/bin/python" - <<'EOF' 2>/dev/null || true
import importlib.metadata as m
import flask, flask_cors  # the [server] extra
print(m.version("moto"))
EOF
}

installed_kubernetes_validate_version() {
  # Prints the version only if the CLI actually starts (imports all its dependencies).
  "$VENV/bin/kubernetes-validate" --version 2>/dev/null || true
}

# pip_pinned LABEL REQUIREMENT VERSION PROBE: installs REQUIREMENT into the venv unless PROBE
# (a function printing the installed version) already prints VERSION; fails if it still
# does not afterwards.
pip_pinned() {
  local label="$1" requirement="$2" version="$3" probe="$4" have
  have="$("$probe")"
  if [[ "$have" == "$version" ]]; then
    echo "test-deps: $label $version already installed"
    return
  fi
  echo "test-deps: installing $requirement (found: ${have:-none})"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$requirement"
  have="$("$probe")"
  if [[ "$have" != "$version" ]]; then
    echo "test-deps: $label install failed (found: ${have:-none})" >&2
    exit 1
  fi
  echo "test-deps: installed $label $version"
}

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "test-deps: creating venv $VENV"
  mkdir -p "$TOOLS"
  "$PYTHON" -m venv "$VENV"
else
  echo "test-deps: venv $VENV present"
fi

pip_pinned "moto[server]" "moto[server]==$MOTO_VERSION" "$MOTO_VERSION" installed_moto_version
echo "test-deps: moto_server at $VENV/bin/moto_server"
pip_pinned kubernetes-validate "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" "$KUBERNETES_VALIDATE_VERSION" installed_kubernetes_validate_version
echo "test-deps: kubernetes-validate at $VENV/bin/kubernetes-validate"
