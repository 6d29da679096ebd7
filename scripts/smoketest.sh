#!/usr/bin/env bash
# `make smoketest`: the release artifacts (target/lambda/<bin>/bootstrap) answer their events/
# samples under a Lambda Runtime API emulator, against a fresh local stack on test ports.
set -euo pipefail
REPO_ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$REPO_ROOT"
export OONI_CLICKHOUSE_PORT="${OONI_SMOKE_CLICKHOUSE_PORT:-28123}"
export OONI_AWS_PORT="${OONI_SMOKE_AWS_PORT:-25000}"
export OONI_CLICKHOUSE_DATA="$REPO_ROOT/.local/smoke-clickhouse-data"
# The endpoints follow the smoke ports even when the caller's environment already has them (a
# shell that sourced scripts/env.sh, or `make test` with its own stack): env.sh keeps set values.
export OONI_CLICKHOUSE_URL="http://127.0.0.1:${OONI_CLICKHOUSE_PORT}"
export AWS_ENDPOINT_URL="http://127.0.0.1:${OONI_AWS_PORT}"
source scripts/env.sh
# An error of the CLI says what went wrong in one line; a backtrace would push it out of view.
export RUST_BACKTRACE=0
rm -rf "$OONI_CLICKHOUSE_DATA"
infra/local/stack.sh start
trap 'infra/local/stack.sh stop' EXIT
# The `ooni` CLI drives the emulator: OONI_BIN reuses one already built (`make test` passes the
# one its `cargo test --workspace` built, whose feature set a lone `cargo build --bin ooni` would
# not match, rebuilding every dependency).
if [ -z "${OONI_BIN:-}" ]; then
  cargo build -q --bin ooni
  OONI_BIN=target/debug/ooni
fi
"$OONI_BIN" migrate
"$OONI_BIN" seed
# The queue URL the template passes to every function (moto's account id is 123456789012).
export OONI_SUBMISSIONS_QUEUE_URL="${AWS_ENDPOINT_URL}/123456789012/ooni-local-submissions"
# The fetching jobs read stand-ins for their upstream sources from a local file server: the
# seed's fingerprint CSVs and infra/smoke/ (test lists, ASN metadata, VPN credentials).
SOURCES="$REPO_ROOT/.local/smoke-sources"
rm -rf "$SOURCES" && mkdir -p "$SOURCES"
cp infra/seed/fingerprints_dns.csv infra/seed/fingerprints_http.csv "$SOURCES/"
cp -r infra/smoke/asnmeta.json infra/smoke/vpn "$SOURCES/"
gzip -c infra/smoke/geoip/cc.mmdb >"$SOURCES/cc.mmdb.gz" # the db-ip monthly files are gzip'd
cp infra/smoke/geoip/asn.mmdb "$SOURCES/"
tar -czf "$SOURCES/test-lists.tar.gz" -C infra/smoke test-lists-master
SEED_PORT="${OONI_SMOKE_SEED_PORT:-28180}"
python3 -m http.server "$SEED_PORT" --bind 127.0.0.1 --directory "$SOURCES" >/dev/null 2>&1 &
seed_server=$!
trap 'kill "$seed_server" 2>/dev/null || true; infra/local/stack.sh stop' EXIT
src="http://127.0.0.1:${SEED_PORT}"
export OONI_FINGERPRINTS_DNS_URL="$src/fingerprints_dns.csv" OONI_FINGERPRINTS_HTTP_URL="$src/fingerprints_http.csv"
export OONI_CITIZENLAB_ARCHIVE_URL="$src/test-lists.tar.gz" OONI_CITIZENLAB_MIN_ROWS=1
export OONI_ASNMETA_URL="$src/asnmeta.json" OONI_ASNMETA_MIN_ROWS=1
export OONI_GEOIP_CC_URL="$src/cc.mmdb.gz" OONI_GEOIP_ASN_URL="$src/asn.mmdb"
export OONI_GEOIP_PROBE_IP=93.57.1.1 OONI_GEOIP_PROBE_CC=IT OONI_GEOIP_PROBE_ASN=30722
export OONI_VPN_EIP_SERVICE_URL="$src/vpn/eip-service.json" OONI_VPN_CA_URL="$src/vpn/ca.crt" OONI_VPN_CERT_URL="$src/vpn/cert"
for _ in $(seq 50); do curl -fs -o /dev/null "$OONI_FINGERPRINTS_DNS_URL" && break; sleep 0.1; done
# JobTestHelperRotation needs the DigitalOcean API and an ACME CA: its black-box tests in
# shared/jobs run it against a stateful fake DigitalOcean API and a local ACME server instead.
"$OONI_BIN" smoketest --skip JobTestHelperRotation "$@"
