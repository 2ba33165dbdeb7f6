#!/usr/bin/env bash
# Fuzzes esmd's parsers and encoders (issue 16): builds the cargo-fuzz targets in fuzz/ and runs
# each for SECONDS (default 60) from the seeds fuzz/seed-corpus.sh writes.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]      e.g. scripts/fuzz.sh 30, scripts/fuzz.sh 600 config_load
#
# Exits non-zero when any target crashed (panic, failed assertion, timeout, out of memory) and
# names each target and its crash artifact; reproduce one with
#   PATH="$HOME/.cargo/bin:$PATH" RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz TARGET ARTIFACT
# (add the sanitizer flag the run printed). A crash that is fixed becomes a unit test beside the
# code it broke.
#
# Toolchain: stable Rust. cargo-fuzz (pinned below) is installed into ~/.cargo/bin once and kept.
# AddressSanitizer is a nightly flag (-Zsanitizer=address): RUSTC_BOOTSTRAP=1 lets stable rustc
# take it (the runtime ships with the stable toolchain). FUZZ_SANITIZER=none builds without it
# (faster; the code under test forbids `unsafe`).
#
# Everything built stays under fuzz/target, crash artifacts under fuzz/artifacts/<target>/,
# the corpus (seeds and what libFuzzer adds) under fuzz/corpus/<target>/; none is committed.
# A cold build compiles the whole service with coverage instrumentation (about 22 minutes on two
# busy cores, 4-5 GB under fuzz/target); later runs rebuild only what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION="0.13.2"
SECONDS_PER_TARGET="${1:-60}"
shift || true
ALL_TARGETS=(config_load filter_pattern function_response event_encoders checkpoint_decode)
if [[ $# -gt 0 ]]; then TARGETS=("$@"); else TARGETS=("${ALL_TARGETS[@]}"); fi
SANITIZER="${FUZZ_SANITIZER:-address}"

if ! [[ "$SECONDS_PER_TARGET" =~ ^[0-9]+$ ]] || [[ "$SECONDS_PER_TARGET" -eq 0 ]]; then
  echo "fuzz: SECONDS must be a positive whole number, not '$SECONDS_PER_TARGET'" >&2
  exit 2
fi

export PATH="$HOME/.cargo/bin:$PATH"
if [[ "$("$HOME/.cargo/bin/cargo-fuzz" --version 2>/dev/null || true)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]]; then
  echo "== fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION into ~/.cargo/bin"
  cargo install --locked --root "$HOME/.cargo" "cargo-fuzz@$CARGO_FUZZ_VERSION"
fi
export RUSTC_BOOTSTRAP=1
# Incremental compilation only costs disk here: the fuzz build is optimised.
export CARGO_INCREMENTAL=0

bash fuzz/seed-corpus.sh

# The same flags for build and run, or `cargo fuzz run` would rebuild.
FLAGS=(--fuzz-dir fuzz --sanitizer "$SANITIZER")

echo "== fuzz: building ${#TARGETS[@]} target(s) (sanitizer: $SANITIZER)"
build_start=$(date +%s)
if [[ ${#TARGETS[@]} -eq ${#ALL_TARGETS[@]} ]]; then
  cargo fuzz build "${FLAGS[@]}"
else
  for t in "${TARGETS[@]}"; do cargo fuzz build "${FLAGS[@]}" "$t"; done
fi
echo "== fuzz: built in $(( $(date +%s) - build_start )) s"

failed=()
for t in "${TARGETS[@]}"; do
  mkdir -p "fuzz/artifacts/$t"
  marker=$(mktemp)
  echo "== fuzz: $t for ${SECONDS_PER_TARGET} s"
  # -timeout: one input running this long is a hang, reported as a crash.
  # -rss_limit_mb: libFuzzer's default (2 GB), said out loud.
  # The full log is kept; the terminal gets it without libFuzzer's per-input progress lines.
  set +e
  cargo fuzz run "${FLAGS[@]}" "$t" "fuzz/corpus/$t" -- \
    -max_total_time="$SECONDS_PER_TARGET" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 2>&1 |
    tee "fuzz/artifacts/$t/last-run.log" | grep -v -e $'^#[0-9]*\t\(NEW\|REDUCE\|pulse\)' -e $'^\tNEW_FUNC'
  status=${PIPESTATUS[0]}
  set -e
  new_artifacts=$(find "fuzz/artifacts/$t" -type f -newer "$marker" ! -name last-run.log)
  rm -f "$marker"
  if [[ $status -ne 0 || -n "$new_artifacts" ]]; then
    failed+=("$t")
    echo "!! fuzz: $t CRASHED (exit $status); log: fuzz/artifacts/$t/last-run.log"
    for a in $new_artifacts; do echo "!!   artifact: $a"; done
  fi
done

echo "== fuzz: corpus sizes: $(for t in "${TARGETS[@]}"; do printf '%s=%s ' "$t" "$(find "fuzz/corpus/$t" -type f | wc -l)"; done)"
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "!! fuzz: ${#failed[@]} target(s) crashed: ${failed[*]}" >&2
  exit 1
fi
echo "== fuzz: ${#TARGETS[@]} target(s) ran ${SECONDS_PER_TARGET} s each without a crash"
