#!/usr/bin/env bash
# `make test`: everything from a fresh machine — tools, a private ClickHouse + AWS emulator on
# test ports (fresh data), the template linters, the whole workspace's tests, the operations
# scripts' tests, bounded fuzzing of the submission validator and the scorer, and the smoke test
# of the release artifacts (x86_64) under a Lambda Runtime API emulator. Stops what it started,
# whatever happens; runs every stage even when an earlier one failed, then exits non-zero if any
# did. Environment: OONI_TEST_FUZZ_SECONDS (per fuzz target, default 45; 0 skips fuzzing),
# OONI_TEST_SMOKE=0 (skip the release build and smoke test, for quick local runs).
set -uo pipefail
REPO_ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$REPO_ROOT"
export OONI_CLICKHOUSE_PORT="${OONI_TEST_CLICKHOUSE_PORT:-18123}"
export OONI_AWS_PORT="${OONI_TEST_AWS_PORT:-15000}"
export OONI_CLICKHOUSE_DATA="$REPO_ROOT/.local/test-clickhouse-data"
source scripts/env.sh
# A fresh clone gains nothing from incremental compilation, which only writes gigabytes more.
if [ -n "${CI:-}" ]; then export CARGO_INCREMENTAL=0; fi
start=$(date +%s)
scripts/setup.sh || exit 1
mkdir -p .local
rm -rf "$OONI_CLICKHOUSE_DATA"
infra/local/stack.sh start || exit 1
build_pid=""
trap 'infra/local/stack.sh stop; if [ -n "$build_pid" ]; then kill -- "-$build_pid" 2>/dev/null; fi' EXIT
export OONI_TEST_CLICKHOUSE_URL="http://127.0.0.1:${OONI_CLICKHOUSE_PORT}"
export OONI_TEST_AWS_ENDPOINT="http://127.0.0.1:${OONI_AWS_PORT}"

passed=0
failed=0
failed_stages=()
stage() { echo; echo "== $1 ($(( $(date +%s) - start )) s in)"; }
record() { # record NAME STATUS PASSED FAILED
  passed=$(( passed + $3 )); failed=$(( failed + $4 ))
  if [ "$2" -ne 0 ]; then failed_stages+=("$1"); [ "$4" -eq 0 ] && failed=$(( failed + 1 )); fi
}

stage "template lint (cfn-lint, sam validate --lint)"
cfn-lint template.yaml && sam validate --lint --region us-east-1 -t template.yaml
s=$?; record template-lint $s $(( s == 0 )) 0

stage "cargo test --workspace"
# Compile first, then build the smoke stage's release artifacts in the background (niced) while
# the tests, the operations scripts and the fuzzers run: those stages leave a core idle much of
# the time (tests wait on ClickHouse and the emulator; a fuzzer runs on one core).
cargo test --workspace --no-run 2>&1 | tee .local/test.log
if [ "${OONI_TEST_SMOKE:-1}" != 0 ]; then
  # Its own process group, so the exit trap can stop make, cargo and rustc together.
  setsid nice -n 10 make build ARCH=x86_64 > .local/test-build.log 2>&1 &
  build_pid=$!
fi
cargo test --workspace --no-fail-fast 2>&1 | tee -a .local/test.log
s=${PIPESTATUS[0]}
record cargo-test $s \
  "$(grep -Eo 'test result: [a-z]+\. [0-9]+ passed' .local/test.log | awk '{s+=$4} END {print s+0}')" \
  "$(grep -Eo 'test result: [a-z]+\. [0-9]+ passed; [0-9]+ failed' .local/test.log | awk '{s+=$6} END {print s+0}')"

stage "operations scripts (rollback, on a private AWS emulator)"
python3 -m unittest -v scripts/test_rollback.py 2>&1 | tee .local/test-ops.log
s=${PIPESTATUS[0]}
record ops $s "$(grep -c ' \.\.\. ok$' .local/test-ops.log)" "$(grep -Ec ' \.\.\. (FAIL|ERROR)$' .local/test-ops.log)"

# The smoke test brings its own stack up on other ports: free this one's memory first.
infra/local/stack.sh stop

fuzz_seconds="${OONI_TEST_FUZZ_SECONDS:-45}"
if [ "$fuzz_seconds" -gt 0 ]; then
  stage "fuzzing (${fuzz_seconds} s per target)"
  scripts/fuzz.sh "$fuzz_seconds" 2>&1 | tee .local/test-fuzz.log
  s=${PIPESTATUS[0]}
  record fuzz $s $(( s == 0 )) 0
fi

if [ "${OONI_TEST_SMOKE:-1}" != 0 ]; then
  stage "smoke test: release artifacts (x86_64) under a Lambda Runtime API emulator"
  wait "$build_pid"
  b=$?
  build_pid=""
  { cat .local/test-build.log
    [ "$b" -eq 0 ] && OONI_BIN=target/debug/ooni scripts/smoketest.sh; } 2>&1 | tee .local/test-smoke.log
  s=${PIPESTATUS[0]}
  line=$(grep -E '^smoketest: [0-9]+ passed, [0-9]+ failed$' .local/test-smoke.log | tail -1)
  smoke_passed=$(echo "$line" | awk '{print $2+0}')
  smoke_failed=$(echo "$line" | awk '{print $4+0}')
  record smoketest $s "$smoke_passed" "$smoke_failed"
fi

# CI shows only the end of this output: repeat why each failed stage failed (its log's error
# lines, without backtrace frames) right above the summary.
declare -A stage_log=([template-lint]="" [cargo-test]=.local/test.log [ops]=.local/test-ops.log
  [fuzz]=.local/test-fuzz.log [smoketest]=.local/test-smoke.log)
for s in "${failed_stages[@]}"; do
  log="${stage_log[$s]:-}"
  [ -n "$log" ] && [ -f "$log" ] || continue
  echo
  echo "== why $s failed (from $log)"
  grep -vE '^ *[0-9]+: |^ +at |^stack backtrace:|^Stack backtrace:' "$log" \
    | grep -iE -A3 'error|panicked|fail|refused|timed out' | grep -vE '^(ok|test .* ok)$' | tail -40
done

echo
echo "make test took $(( $(date +%s) - start )) s"
if [ "${#failed_stages[@]}" -gt 0 ]; then echo "failed stages: ${failed_stages[*]}"; fi
echo "summary: ${passed} passed, ${failed} failed"
[ "${#failed_stages[@]}" -eq 0 ]
