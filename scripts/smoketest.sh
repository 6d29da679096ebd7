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
# Every background server the script starts is stopped on exit, then the stack.
bg_pids=()
cleanup() {
  local pid
  for pid in "${bg_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${bg_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  infra/local/stack.sh stop
}
trap cleanup EXIT
infra/local/stack.sh start
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
wait_for() { # wait_for <what> <command...>: up to 10 s, else a clear error (set -e stops here)
  local what=$1
  shift
  for _ in $(seq 100); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "smoketest: $what did not start (logs in .local/)" >&2
  return 1
}
SOURCES="$REPO_ROOT/.local/smoke-sources"
rm -rf "$SOURCES" && mkdir -p "$SOURCES"
cp infra/seed/fingerprints_dns.csv infra/seed/fingerprints_http.csv "$SOURCES/"
cp -r infra/smoke/asnmeta.json infra/smoke/vpn "$SOURCES/"
gzip -c infra/smoke/geoip/cc.mmdb >"$SOURCES/cc.mmdb.gz" # the db-ip monthly files are gzip'd
cp infra/smoke/geoip/asn.mmdb "$SOURCES/"
tar -czf "$SOURCES/test-lists.tar.gz" -C infra/smoke test-lists-master
SEED_PORT="${OONI_SMOKE_SEED_PORT:-28180}"
python3 -m http.server "$SEED_PORT" --bind 127.0.0.1 --directory "$SOURCES" >/dev/null 2>&1 &
bg_pids+=($!)
src="http://127.0.0.1:${SEED_PORT}"
export OONI_FINGERPRINTS_DNS_URL="$src/fingerprints_dns.csv" OONI_FINGERPRINTS_HTTP_URL="$src/fingerprints_http.csv"
export OONI_CITIZENLAB_ARCHIVE_URL="$src/test-lists.tar.gz" OONI_CITIZENLAB_MIN_ROWS=1
export OONI_ASNMETA_URL="$src/asnmeta.json" OONI_ASNMETA_MIN_ROWS=1
export OONI_GEOIP_CC_URL="$src/cc.mmdb.gz" OONI_GEOIP_ASN_URL="$src/asn.mmdb"
export OONI_GEOIP_PROBE_IP=93.57.1.1 OONI_GEOIP_PROBE_CC=IT OONI_GEOIP_PROBE_ASN=30722
export OONI_VPN_EIP_SERVICE_URL="$src/vpn/eip-service.json" OONI_VPN_CA_URL="$src/vpn/ca.crt" OONI_VPN_CERT_URL="$src/vpn/cert"
wait_for "the source file server" curl -fs -o /dev/null "$OONI_FINGERPRINTS_DNS_URL"
# JobTestHelperRotation talks to the DigitalOcean API and an ACME CA. Here (as in its black-box
# tests in shared/jobs) those are a stateful fake DigitalOcean API (infra/smoke/fake_digitalocean.py)
# and a real local ACME server: pebble, validating DNS-01 against pebble-challtestsrv, whose TXT
# records the fake sets and clears. Its first scheduled run finds no droplets: it orders the
# wildcard certificate `*.th.test` and spawns the first helper.
ROT="$REPO_ROOT/.local/smoke-rotation"
rm -rf "$ROT" && mkdir -p "$ROT"
ACME_PORT="${OONI_SMOKE_ACME_PORT:-28443}"                 # pebble's ACME directory (HTTPS)
ACME_MGMT_PORT="${OONI_SMOKE_ACME_MANAGEMENT_PORT:-28444}" # pebble's management API (HTTPS)
DNS_PORT="${OONI_SMOKE_DNS_PORT:-28053}"                   # challtestsrv's DNS (UDP and TCP)
DNS_API_PORT="${OONI_SMOKE_DNS_API_PORT:-28055}"           # challtestsrv's management API
DO_PORT="${OONI_SMOKE_DO_PORT:-28190}"                     # the fake DigitalOcean API
# pebble's own HTTPS identity: a throwaway CA and the 127.0.0.1/localhost certificate it signs.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj "/CN=ooni smoke ACME CA" -keyout "$ROT/ca.key" -out "$ROT/ca.pem" 2>"$ROT/openssl.log"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
  -keyout "$ROT/key.pem" -out "$ROT/cert.csr" 2>>"$ROT/openssl.log"
printf '%s\n' 'basicConstraints=critical,CA:FALSE' 'keyUsage=critical,digitalSignature' \
  'extendedKeyUsage=serverAuth' 'subjectAltName=DNS:localhost,IP:127.0.0.1' >"$ROT/cert.ext"
openssl x509 -req -in "$ROT/cert.csr" -CA "$ROT/ca.pem" -CAkey "$ROT/ca.key" -set_serial 1 \
  -days 2 -extfile "$ROT/cert.ext" -out "$ROT/cert.pem" 2>>"$ROT/openssl.log"
printf '{"pebble": {"listenAddress": "127.0.0.1:%s", "managementListenAddress": "127.0.0.1:%s",
  "certificate": "%s", "privateKey": "%s", "httpPort": 5002, "tlsPort": 5001,
  "ocspResponderURL": "", "externalAccountBindingRequired": false}}\n' \
  "$ACME_PORT" "$ACME_MGMT_PORT" "$ROT/cert.pem" "$ROT/key.pem" >"$ROT/pebble.json"
# challtestsrv: only its DNS server and management API (no HTTP-01/TLS-ALPN-01 listeners).
pebble-challtestsrv -dns01 "127.0.0.1:${DNS_PORT}" -management "127.0.0.1:${DNS_API_PORT}" \
  -http01 "" -https01 "" -tlsalpn01 "" >"$ROT/challtestsrv.log" 2>&1 &
bg_pids+=($!)
# No sleep between validation attempts, no nonce rejections, no authorization reuse: every order
# goes through a real DNS-01 validation.
env -u PEBBLE_VA_ALWAYS_VALID PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 PEBBLE_AUTHZREUSE=0 \
  pebble -config "$ROT/pebble.json" -dnsserver "127.0.0.1:${DNS_PORT}" >"$ROT/pebble.log" 2>&1 &
bg_pids+=($!)
export OONI_DIGITALOCEAN_TOKEN=smoke-do-token
OONI_SMOKE_DO_PORT="$DO_PORT" OONI_SMOKE_DO_TOKEN="$OONI_DIGITALOCEAN_TOKEN" \
  OONI_SMOKE_DNS_API="http://127.0.0.1:${DNS_API_PORT}" \
  python3 infra/smoke/fake_digitalocean.py >"$ROT/fake_digitalocean.log" 2>&1 &
bg_pids+=($!)
wait_for pebble curl -fs --cacert "$ROT/ca.pem" "https://127.0.0.1:${ACME_PORT}/dir"
wait_for pebble-challtestsrv curl -s -o /dev/null "http://127.0.0.1:${DNS_API_PORT}/"
wait_for "the fake DigitalOcean API" curl -fs -H "Authorization: Bearer $OONI_DIGITALOCEAN_TOKEN" \
  "http://127.0.0.1:${DO_PORT}/v2/droplets?tag_name=roaming-th"
export OONI_ROTATION_API_URL="http://127.0.0.1:${DO_PORT}" OONI_ROTATION_DNS_ZONE=th.test
export OONI_ROTATION_ACME_DIRECTORY="https://127.0.0.1:${ACME_PORT}/dir"
OONI_ROTATION_ACME_CA_PEM="$(cat "$ROT/ca.pem")"
export OONI_ROTATION_ACME_CA_PEM OONI_ROTATION_ACME_PROPAGATION_SECONDS=0 OONI_ROTATION_ACME_TIMEOUT_SECONDS=15
# The helpers' first-boot script, read from the config bucket (a stand-in: no droplet boots).
export OONI_ROTATION_SETUP_KEY=rotation/setup.sh
"$REPO_ROOT/.venv/bin/python" -c '
import sys, boto3
bucket, key, path = sys.argv[1:]
with open(path, "rb") as f:
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=f.read(), ContentType="text/x-shellscript")
' "${OONI_CONFIG_BUCKET:-ooni-local-config}" "$OONI_ROTATION_SETUP_KEY" infra/smoke/rotation-setup.sh
"$OONI_BIN" smoketest "$@"
