#!/usr/bin/env bash
# `make run`: set up if needed, start ClickHouse + the AWS emulator, migrate, seed, then serve the
# whole backend in the foreground. Ctrl-C stops everything this script started (by pid).
set -euo pipefail
REPO_ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$REPO_ROOT"
source scripts/env.sh
scripts/setup.sh
cargo build --bin ooni
STARTED_STACK=0
if ! infra/local/stack.sh status >/dev/null 2>&1; then
    infra/local/stack.sh start
    STARTED_STACK=1
fi
cleanup() {
    if [[ $STARTED_STACK == 1 ]]; then infra/local/stack.sh stop; fi
}
trap cleanup EXIT
target/debug/ooni migrate
target/debug/ooni seed
cat <<MSG

  OONI backend (local)
    API           http://${OONI_API_ADDR}        (try: curl -s http://${OONI_API_ADDR}/health)
    ClickHouse    ${OONI_CLICKHOUSE_URL}
    AWS emulator  ${AWS_ENDPOINT_URL}
  Ctrl-C stops everything.

MSG
# Not exec: the trap must run after the server exits.
target/debug/ooni dev --addr "$OONI_API_ADDR" &
DEV_PID=$!
trap 'kill -INT $DEV_PID 2>/dev/null || true' INT TERM
wait $DEV_PID || true
wait $DEV_PID 2>/dev/null || true
