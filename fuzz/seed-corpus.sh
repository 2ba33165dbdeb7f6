#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ from the project's own files: config examples and fixtures,
# filter-pattern test vectors, and a few hand-written function responses and checkpoints.
# Idempotent (seed files are rewritten, libFuzzer's own finds are kept); scripts/fuzz.sh calls
# it before every run. The corpus directories are not committed (.gitignore).
set -euo pipefail
cd "$(dirname "$0")/.."

out=fuzz/corpus
mkdir -p "$out"/{config_load,filter_pattern,function_response,event_encoders,checkpoint_decode}

# seed TARGET PREFIX FILE: FILE's bytes after PREFIX, as seed-<path with / as _>.
seed() {
  local target=$1 prefix=$2 file=$3
  [[ -f "$file" ]] || return 0
  { printf '%s' "$prefix"; cat "$file"; } >"$out/$target/seed-${file//\//_}"
}

# text TARGET NAME TEXT: a hand-written seed.
text() {
  printf '%s' "$3" >"$out/$1/seed-$2"
}

# config_load: the first byte picks the format (t TOML, y YAML, j JSON).
shopt -s nullglob
for f in config/*.toml config/compose/*.toml tests/fixtures/config/*.toml; do seed config_load t "$f"; done
for f in tests/fixtures/config/*.yaml tests/fixtures/config/*.yml deploy/kubernetes/*.yaml; do seed config_load y "$f"; done
for f in tests/fixtures/config/*.json; do seed config_load j "$f"; done
text config_load env-toml 't[admin]
listen = "${ADMIN:-127.0.0.1:9464}"
[[mappings]]
name = "orders"
starting_position = "TRIM_HORIZON"
filter_criteria = { filters = [{ pattern = "{\"a\": [\"$${literal}\"]}" }] }
[mappings.source]
type = "memory"
stream_name = "${STREAM:-orders}"
[mappings.function]
type = "http"
url = "${FN_URL}"
headers = { Authorization = "Bearer ${TOKEN}", X = "${QUOTE}${UNSET_X:-}" }
'

# filter_pattern: a vector file as it is, or `pattern NUL event`.
for f in tests/fixtures/filter-patterns/*.json5; do seed filter_pattern "" "$f"; done
printf '%s\0%s' '{"detail": {"state": [{"anything-but": "initializing"}]}}' '{"detail": {"state": "running"}}' >"$out/filter_pattern/seed-anything-but"
printf '%s\0%s' '{"a": [{"numeric": [">", 0, "<=", 5]}], "$or": [{"b": [{"prefix": "x"}]}, {"c": [{"exists": false}]}]}' '{"a": 3, "b": "xy"}' >"$out/filter_pattern/seed-or-numeric"
printf '%s\0%s' '{"f": [{"wildcard": "*/datasync/*.bif"}, {"suffix": {"equals-ignore-case": ".TIF"}}, {"cidr": "10.0.0.0/24"}]}' '{"f": ["a/datasync/b.bif", "10.0.0.7"]}' >"$out/filter_pattern/seed-wildcard-cidr"

# function_response: response bodies (AWS's partial-batch scenarios, Lambda error objects,
# tumbling-window state) and Retry-After values.
i=0
for body in '' '""' '[]' 'null' '{}' '42' 'not json' \
  '{"batchItemFailures":[]}' '{"batchItemFailures":null}' \
  '{"batchItemFailures":[{"itemIdentifier":"1"},{"itemIdentifier":"2"},{"itemIdentifier":"1"}]}' \
  '{"batchItemFailures":[{"itemIdentifier":{"partition":"t-0","offset":0}}]}' \
  '{"batchItemFailures":[{"itemIdentifier":123}]}' '{"batchItemFailures":[{"itemIdentifier":""}]}' \
  '{"batchItemFailures":[{"foo":null}]}' '{"batchItemFailures":"x"}' \
  '{"state":{"count":3},"batchItemFailures":[]}' '{"state":null}' \
  '{"errorType":"Error","errorMessage":"boom","trace":[]}' '{"errorMessage":"2024-01-01 Task timed out after 3.00 seconds","errorType":"Sandbox.Timedout"}' \
  'Task timed out after 3.00 seconds' '120' '1.5' 'Wed, 21 Oct 2015 07:28:00 GMT'; do
  text function_response "$((i++))" "$body"
done

# checkpoint_decode: stored values as EmbeddedStore::save writes them, and older shapes.
text checkpoint_decode kinesis '{"position":"49590338271490256608559692538361571095921575989136588898","shard_finished":false}'
text checkpoint_decode finished '{"position":null,"shard_finished":true}'
text checkpoint_decode window '{"position":"15","shard_finished":false,"state":{"count":3,"ids":["a","b"],"avg":1.5}}'
text checkpoint_decode kafka '{"position":"9223372036854775807","shard_finished":false,"state":null}'

# event_encoders: structured input (arbitrary); a few fixture files give it bytes to start from.
for f in tests/fixtures/dynamodb_record.json tests/fixtures/aws-docs/kinesis-time-window-event.json; do seed event_encoders "" "$f"; done

echo "seed-corpus: $(find "$out" -name 'seed-*' | wc -l) seed files under $out/"
