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
# JobFingerprints fetches the seed's CSVs from a local file server instead of upstream.
SEED_PORT="${OONI_SMOKE_SEED_PORT:-28180}"
python3 -m http.server "$SEED_PORT" --bind 127.0.0.1 --directory infra/seed >/dev/null 2>&1 &
seed_server=$!
trap 'kill "$seed_server" 2>/dev/null || true; infra/local/stack.sh stop' EXIT
export OONI_FINGERPRINTS_DNS_URL="http://127.0.0.1:${SEED_PORT}/fingerprints_dns.csv"
export OONI_FINGERPRINTS_HTTP_URL="http://127.0.0.1:${SEED_PORT}/fingerprints_http.csv"
for _ in $(seq 50); do curl -fs -o /dev/null "$OONI_FINGERPRINTS_DNS_URL" && break; sleep 0.1; done
# The other fetching jobs need upstream archives this machine cannot reach (no network); their
# black-box tests in shared/jobs run them against recording fake upstreams instead.
target/debug/ooni smoketest --skip JobCitizenlab --skip JobAsnmeta --skip JobGeoip \
    --skip JobVpnCredentials --skip JobTestHelperRotation "$@"
