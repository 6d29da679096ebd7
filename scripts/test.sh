#!/usr/bin/env bash
# `make test`: everything from a fresh machine — tools, a private ClickHouse + AWS emulator on
# test ports (fresh data), the whole workspace's tests, and the template linters. Stops what it
# started, whatever happens.
set -euo pipefail
REPO_ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$REPO_ROOT"
export OONI_CLICKHOUSE_PORT="${OONI_TEST_CLICKHOUSE_PORT:-18123}"
export OONI_AWS_PORT="${OONI_TEST_AWS_PORT:-15000}"
export OONI_CLICKHOUSE_DATA="$REPO_ROOT/.local/test-clickhouse-data"
source scripts/env.sh
start=$(date +%s)
scripts/setup.sh
rm -rf "$OONI_CLICKHOUSE_DATA"
infra/local/stack.sh start
trap 'infra/local/stack.sh stop' EXIT
export OONI_TEST_CLICKHOUSE_URL="http://127.0.0.1:${OONI_CLICKHOUSE_PORT}"
export OONI_TEST_AWS_ENDPOINT="http://127.0.0.1:${OONI_AWS_PORT}"
echo "== template lint (cfn-lint, sam validate --lint)"
cfn-lint template.yaml
sam validate --lint --region us-east-1 -t template.yaml
echo "== cargo test --workspace"
cargo test --workspace --no-fail-fast 2>&1 | tee .local/test.log
status=${PIPESTATUS[0]}
passed=$(grep -Eo 'test result: [a-z]+\. [0-9]+ passed' .local/test.log | awk '{s+=$4} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' .local/test.log | awk '{s+=$1} END {print s+0}')
echo "make test took $(( $(date +%s) - start )) s"
echo "summary: ${passed} passed, ${failed} failed"
exit "$status"
