#!/usr/bin/env bash
# Installs what the Kafka schema-registry tests run, into target/test-tools/schema-registry-venv.
# Idempotent: does nothing when the pinned set is already there, and says so.
#
#   Python venv  target/test-tools/schema-registry-venv/bin/python  (pins: scripts/schema-registry-requirements.txt)
#     confluent-kafka[schemaregistry,avro,protobuf,json]  real AvroSerializer/ProtobufSerializer/JSONSerializer
#     grpcio-tools             protoc without network (compiles tests/fixtures/schema_registry/*.proto)
#     aws-glue-schema-registry Glue's Avro/JSON Schema serializer (over boto3, pointed at moto)
#   and runs with it:
#     tests/support/schema_registry/confluent_registry.py  in-memory Confluent-API registry (REST v1)
#     tests/support/schema_registry/produce.py             Confluent-framed producer
#     tests/support/schema_registry/produce_glue.py        Glue-framed producer
#
# Also needed, from their own scripts: tansu (scripts/kafka-deps.sh) and, for Glue, moto
# (scripts/test-deps.sh). Tests find the venv there, or its python at $ESMD_SCHEMA_REGISTRY_PYTHON.
# A missing venv fails those tests with a pointer to this script; it never skips them.
#
# No Confluent-API registry *server* can be installed from the registries this project reaches
# (Confluent's is Maven/Docker, karapace is not on PyPI, Apicurio is Maven), so
# confluent_registry.py stands in for one; the serializers and their wire format are the real ones.
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS="target/test-tools"
VENV="$TOOLS/schema-registry-venv"
REQUIREMENTS="scripts/schema-registry-requirements.txt"
PYTHON="${PYTHON:-python3}"
STAMP="$VENV/.requirements.sha256"

want="$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)"

# Prints "ok" only if every tool the tests use imports and protoc runs.
probe() {
  [[ -x "$VENV/bin/python" ]] || return 0
  "$VENV/bin/python" - <<'EOF' 2>/dev/null || true
import confluent_kafka, fastavro, jsonschema, google.protobuf, boto3, aws_schema_registry, orjson
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufSerializer
from confluent_kafka.schema_registry.json_schema import JSONSerializer
from grpc_tools import protoc
import sys
sys.exit(protoc.main(["protoc", "--version"]) or print("ok"))
EOF
}

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" && "$(probe | tail -1)" == "ok" ]]; then
  echo "schema-registry-deps: $VENV up to date ($REQUIREMENTS)"
  exit 0
fi

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "schema-registry-deps: creating venv $VENV"
  mkdir -p "$TOOLS"
  "$PYTHON" -m venv "$VENV"
else
  echo "schema-registry-deps: venv $VENV present"
fi

echo "schema-registry-deps: installing $REQUIREMENTS (confluent-kafka, grpcio-tools, aws-glue-schema-registry; ~20 s)"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQUIREMENTS"

if [[ "$(probe | tail -1)" != "ok" ]]; then
  echo "schema-registry-deps: the installed packages do not import or protoc does not run:" >&2
  probe >&2 || true
  "$VENV/bin/python" -c 'import confluent_kafka.schema_registry.protobuf, grpc_tools.protoc, aws_schema_registry' >&2 || true
  exit 1
fi
echo "$want" > "$STAMP"
echo "schema-registry-deps: installed $("$VENV/bin/python" -c 'import confluent_kafka; import importlib.metadata as m; print("confluent-kafka", m.version("confluent-kafka"), "(librdkafka", confluent_kafka.libversion()[0] + "), grpcio-tools", m.version("grpcio-tools") + ", aws-glue-schema-registry", m.version("aws-glue-schema-registry"))')"
echo "schema-registry-deps: python at $VENV/bin/python"
