#!/usr/bin/env bash
# `make smoketest`: the release artifacts (target/lambda/<bin>/bootstrap) answer their events/
# samples under a Lambda Runtime API emulator, against a fresh local stack on test ports.
set -euo pipefail
REPO_ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$REPO_ROOT"
export OONI_CLICKHOUSE_PORT="${OONI_SMOKE_CLICKHOUSE_PORT:-28123}"
export OONI_AWS_PORT="${OONI_SMOKE_AWS_PORT:-25000}"
export OONI_CLICKHOUSE_DATA="$REPO_ROOT/.local/smoke-clickhouse-data"
source scripts/env.sh
rm -rf "$OONI_CLICKHOUSE_DATA"
infra/local/stack.sh start
trap 'infra/local/stack.sh stop' EXIT
cargo build -q --bin ooni
target/debug/ooni migrate
target/debug/ooni seed
# The queue URL the template passes to every function (moto's account id is 123456789012).
export OONI_SUBMISSIONS_QUEUE_URL="${AWS_ENDPOINT_URL}/123456789012/ooni-local-submissions"
# Jobs that fetch from the internet have no source here (no network): leave them out.
target/debug/ooni smoketest --skip JobCitizenlab --skip JobFingerprints --skip JobAsnmeta --skip JobGeoip \
    --skip JobVpnCredentials --skip JobTestHelperRotation "$@"
