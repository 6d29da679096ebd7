#!/usr/bin/env bash
# Prints `export` lines that point the `ooni` CLI at a deployed stage (its buckets, queue and
# ClickHouse, from the CloudFormation stack's outputs), for the runbook's operator commands:
#
#   eval "$(scripts/stage-env.sh prod)"   # then e.g. `target/release/ooni fastpath reprocess ...`
#
# Uses the AWS credentials of the shell (never the local emulator: AWS_ENDPOINT_URL is unset).
# The ClickHouse password is read by the CLI from SSM at start (OONI_CLICKHOUSE_PASSWORD_SSM_PARAMETER).
set -euo pipefail
STAGE="${1:?usage: scripts/stage-env.sh dev|test|prod}"
REPO_ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
export PATH="$REPO_ROOT/.venv/bin:$PATH"
unset AWS_ENDPOINT_URL
outputs=$(sam list stack-outputs --stack-name "ooni-${STAGE}" --output json)
echo "unset AWS_ENDPOINT_URL AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY"
echo "export OONI_STAGE=${STAGE}"
python3 - "$outputs" <<'PY'
import json, shlex, sys
env = {
    "DataBucketName": "OONI_DATA_BUCKET", "IncomingBucketName": "OONI_INCOMING_BUCKET",
    "ConfigBucketName": "OONI_CONFIG_BUCKET", "BackupBucketName": "OONI_BACKUP_BUCKET",
    "SubmissionsQueueUrl": "OONI_SUBMISSIONS_QUEUE_URL", "ClickHouseUrl": "OONI_CLICKHOUSE_URL",
    "ClickHouseDatabase": "OONI_CLICKHOUSE_DATABASE",
    "ClickHousePasswordParameter": "OONI_CLICKHOUSE_PASSWORD_SSM_PARAMETER",
}
for o in json.loads(sys.argv[1]):
    if o["OutputKey"] in env:
        print(f"export {env[o['OutputKey']]}={shlex.quote(o['OutputValue'])}")
PY
