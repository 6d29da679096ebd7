# Sourced by the Makefile's scripts: the local endpoints and names every command uses.
# Each value can be overridden from the environment.
export OONI_CLICKHOUSE_PORT="${OONI_CLICKHOUSE_PORT:-8123}"
export OONI_AWS_PORT="${OONI_AWS_PORT:-5000}"
export OONI_API_ADDR="${OONI_API_ADDR:-127.0.0.1:8080}"
export OONI_CLICKHOUSE_URL="${OONI_CLICKHOUSE_URL:-http://127.0.0.1:${OONI_CLICKHOUSE_PORT}}"
export OONI_CLICKHOUSE_DATABASE="${OONI_CLICKHOUSE_DATABASE:-ooni}"
export AWS_ENDPOINT_URL="${AWS_ENDPOINT_URL:-http://127.0.0.1:${OONI_AWS_PORT}}"
export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
export OONI_STAGE="${OONI_STAGE:-local}"
export OONI_BASE_URL="${OONI_BASE_URL:-http://${OONI_API_ADDR}}"
# Local-only keys (never used outside this machine; AWS reads them from SSM).
export OONI_ACCOUNT_ID_HASHING_KEY="${OONI_ACCOUNT_ID_HASHING_KEY:-local-account-id-hashing-key}"
export OONI_QUOTA_HASH_KEY="${OONI_QUOTA_HASH_KEY:-local-quota-hash-key}"
export OONI_EMAIL_SOURCE_ADDRESS="${OONI_EMAIL_SOURCE_ADDRESS:-noreply@ooni.local}"
export OONI_ADMIN_EMAILS="${OONI_ADMIN_EMAILS:-admin@ooni.local}"
export SAM_CLI_TELEMETRY=0
REPO_ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
export PATH="$REPO_ROOT/.venv/bin:$HOME/.cargo/bin:$PATH"
