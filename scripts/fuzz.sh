#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo-fuzz + libFuzzer, stable toolchain) of the submission validator
# and the fastpath scorer: `scripts/fuzz.sh [SECONDS] [TARGET...]`.
#
# Installs cargo-fuzz when missing (from crates.io, pinned; ~70 s on this 2-core machine), builds
# the targets in `fuzz/` (release, with debug assertions so integer overflows panic, no
# sanitizer: the fuzzed crates forbid `unsafe`, and the sanitizer would need a nightly compiler),
# then runs each target for SECONDS (default 60) on its working corpus `fuzz/corpus/<target>/`
# (git-ignored; seeded from `fuzz/corpus-seeds/`, kept between runs so coverage accumulates).
#
# Fails when any target finds a crash (panic, failed invariant), an input that runs longer than
# FUZZ_TIMEOUT seconds (default 2: the time bound of one input), or one that needs more than
# FUZZ_RSS_MB (default 2048) of memory. The failing input is in `fuzz/artifacts/<target>/`;
# replay it with `cargo fuzz run -O -a -s none <target> <file>` from `fuzz/`, then turn it into
# a test in the owning crate's `tests/fuzz_regressions.rs`.
set -euo pipefail
REPO_ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$REPO_ROOT/fuzz"

SECONDS_PER_TARGET="${1:-60}"
shift || true
TARGETS=("$@")
if [ "${#TARGETS[@]}" -eq 0 ]; then
  TARGETS=(submission scorer)
fi
TIMEOUT="${FUZZ_TIMEOUT:-2}"
RSS_MB="${FUZZ_RSS_MB:-2048}"
MAX_LEN="${FUZZ_MAX_LEN:-65536}"
CARGO_FUZZ_VERSION="0.13.2"
# FUZZ_SANITIZER=address adds AddressSanitizer; that needs nightly-only rustc flags, which the
# stable compiler accepts with RUSTC_BOOTSTRAP=1 (works here, at a fraction of the speed).
SANITIZER="${FUZZ_SANITIZER:-none}"
if [ "$SANITIZER" != none ]; then
  export RUSTC_BOOTSTRAP=1
fi
BUILD_FLAGS=(-O -a -s "$SANITIZER")

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz ${CARGO_FUZZ_VERSION}"
  t0=$(date +%s)
  cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
  echo "cargo-fuzz installed in $(( $(date +%s) - t0 )) s"
fi

echo "== building fuzz targets (${TARGETS[*]})"
t0=$(date +%s)
for target in "${TARGETS[@]}"; do
  cargo fuzz build "${BUILD_FLAGS[@]}" "$target"
done
echo "built in $(( $(date +%s) - t0 )) s"

seed_dirs() {
  case "$1" in
    submission) echo corpus-seeds/submissions ;;
    scorer) echo corpus-seeds/measurements corpus-seeds/submissions ;;
    *) echo "unknown fuzz target $1" >&2; return 1 ;;
  esac
}

failed=()
for target in "${TARGETS[@]}"; do
  corpus="corpus/$target"
  mkdir -p "$corpus" "artifacts/$target"
  for dir in $(seed_dirs "$target"); do
    for f in "$dir"/*; do
      [ "$(basename "$f")" = SOURCES.md ] && continue
      # Prefix with the folder so same-named seeds of two folders both land.
      cp -n "$f" "$corpus/$(basename "$dir")-$(basename "$f")"
    done
  done
  echo "== fuzzing $target for ${SECONDS_PER_TARGET} s (timeout ${TIMEOUT} s per input, rss ${RSS_MB} MB, max_len ${MAX_LEN})"
  log="artifacts/$target/last-run.log"
  set +e
  cargo fuzz run "${BUILD_FLAGS[@]}" "$target" "$corpus" -- \
    -max_total_time="$SECONDS_PER_TARGET" -timeout="$TIMEOUT" -rss_limit_mb="$RSS_MB" \
    -max_len="$MAX_LEN" -print_final_stats=1 >"$log" 2>&1
  status=$?
  set -e
  grep -E '^#[0-9]+ +(INITED|DONE)|^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)|^Done ' "$log" || true
  if [ "$status" -ne 0 ]; then
    echo "!! $target FAILED (exit $status); last lines of $log:"
    grep -vE '^#[0-9]+ |^INFO:|^WARNING:|Uses: ' "$log" | tail -40
    ls -1 "artifacts/$target" | grep -vE '^last-run.log$' || true
    failed+=("$target")
  else
    echo "ok: $target, no crash and no input over ${TIMEOUT} s"
  fi
done

if [ "${#failed[@]}" -ne 0 ]; then
  echo "fuzz: ${#failed[@]} target(s) failed: ${failed[*]}"
  exit 1
fi
echo "fuzz: ${#TARGETS[@]} target(s) ran ${SECONDS_PER_TARGET} s each without a finding"
