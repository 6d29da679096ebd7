#!/usr/bin/env bash
# Local backing services for development and tests: ClickHouse (HTTP, served from chdb by
# infra/local/clickhouse_server.py) and an AWS emulator (moto served with keep-alive by
# infra/local/aws_server.py), both on 127.0.0.1.
#
# Usage: infra/local/stack.sh start|stop|status|wait|restart
#
#   start    start whatever is not running, then wait until both answer (no-op when up)
#   stop     TERM each service by pid, wait, then KILL; removes pid files
#   status   print state; exit 0 when both run and answer, 3 otherwise
#   wait     wait until both running services answer (exit 1 on timeout or if one is down)
#   restart  stop then start
#
# Environment (defaults in brackets):
#   OONI_CLICKHOUSE_PORT [8123]   OONI_AWS_PORT [5000]
#   OONI_CLICKHOUSE_DATA [<repo>/.local/clickhouse-data]
#   OONI_LOCAL_DIR       [<repo>/.local]   pid files, logs and the ClickHouse run dir
#   OONI_STACK_TIMEOUT   [60]              seconds to wait for readiness / for a stop
#
# Pid and log files are keyed by port (e.g. .local/clickhouse.8123.pid), so stacks on
# different ports can coexist; give each its own OONI_CLICKHOUSE_DATA (a data dir can be
# opened by one process only). Works from any cwd.
set -euo pipefail

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
REPO_ROOT="$(cd -- "$SCRIPT_DIR/../.." && pwd -P)"

CH_PORT="${OONI_CLICKHOUSE_PORT:-8123}"
AWS_PORT="${OONI_AWS_PORT:-5000}"
LOCAL_DIR="${OONI_LOCAL_DIR:-$REPO_ROOT/.local}"
CH_DATA="${OONI_CLICKHOUSE_DATA:-$LOCAL_DIR/clickhouse-data}"
TIMEOUT="${OONI_STACK_TIMEOUT:-60}"
VENV_BIN="$REPO_ROOT/.venv/bin"
PYTHON="$VENV_BIN/python"
CH_SCRIPT="$SCRIPT_DIR/clickhouse_server.py"
AWS_SCRIPT="$SCRIPT_DIR/aws_server.py"

CH_PID="$LOCAL_DIR/clickhouse.$CH_PORT.pid"
CH_LOG="$LOCAL_DIR/clickhouse.$CH_PORT.log"
CH_RUN="$LOCAL_DIR/clickhouse-run.$CH_PORT"
AWS_PID="$LOCAL_DIR/moto.$AWS_PORT.pid"
AWS_LOG="$LOCAL_DIR/moto.$AWS_PORT.log"
# Substrings of each service's command line: a pid file only counts if its process matches.
CH_NEEDLE="clickhouse_server.py --port $CH_PORT "
AWS_NEEDLE="aws_server.py -H 127.0.0.1 -p $AWS_PORT "

say() { printf 'stack: %s\n' "$*"; }
die() { printf 'stack: error: %s\n' "$*" >&2; exit 1; }

now_ms() { date +%s%3N; }

# Print the pid recorded in $1 if that process is alive and is the expected program ($2 is a
# substring of its command line); otherwise print nothing (a stale pid file or a reused pid).
live_pid() {
    local file="$1" needle="$2" pid
    [[ -f "$file" ]] || return 0
    pid="$(tr -dc '0-9' <"$file")"
    [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] || return 0
    if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$needle"; then
        printf '%s' "$pid"
    fi
}

# HTTP status code of a GET, or 000 when nothing answers.
http_code() {
    curl -s -o /dev/null -m 2 -w '%{http_code}' "$1" 2>/dev/null || true
}

ch_answers() { [[ "$(curl -s -m 2 "http://127.0.0.1:$CH_PORT/ping" 2>/dev/null || true)" == "Ok." ]]; }
aws_answers() {
    local code
    code="$(http_code "http://127.0.0.1:$AWS_PORT/moto-api/")"
    [[ "$code" == 200 || "$code" == 404 ]]
}

port_taken() { [[ "$(http_code "http://127.0.0.1:$1/")" != 000 ]] || ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }

# check_port NAME PIDFILE NEEDLE PORT PORTVAR: fail early if the service is not ours-and-running
# but its port is taken (so a failed start never leaves the other service half started).
check_port() {
    local name="$1" pidfile="$2" needle="$3" port="$4" portvar="$5"
    [[ -n "$(live_pid "$pidfile" "$needle")" ]] && return 0
    if port_taken "$port"; then
        die "$name: port $port on 127.0.0.1 is already in use by another process (set $portvar to use another one)"
    fi
}

# start_service NAME PIDFILE LOGFILE PORT NEEDLE -- CMD...
start_service() {
    local name="$1" pidfile="$2" logfile="$3" port="$4" needle="$5" pid
    shift 6
    pid="$(live_pid "$pidfile" "$needle")"
    if [[ -n "$pid" ]]; then
        say "$name already running (pid $pid, port $port)"
        return 0
    fi
    if [[ -f "$pidfile" ]]; then
        say "$name: removing stale pid file ${pidfile#"$REPO_ROOT"/}"
        rm -f "$pidfile"
    fi
    printf '\n==== %s start %s ====\n' "$name" "$(date -u +%FT%TZ)" >>"$logfile"
    # setsid: own process group and session, detached from this shell and its terminal.
    # 9>&-: do not hand the stack lock to the service.
    setsid "$@" >>"$logfile" 2>&1 </dev/null 9>&- &
    pid=$!
    printf '%s\n' "$pid" >"$pidfile"
    STARTED+=("$name")
    say "$name started (pid $pid, port $port, log ${logfile#"$REPO_ROOT"/})"
}

# A ClickHouse data dir can be open in one process only; it holds an flock on `status`
# while running. Fail early with the owner's pid instead of a Code 76 in the log.
check_data_dir() {
    [[ -n "$(live_pid "$CH_PID" "$CH_NEEDLE")" ]] && return 0
    local status="$CH_DATA/status" owner
    if [[ -e "$status" ]] && ! flock -n "$status" true 2>/dev/null; then
        owner="$(sed -n 's/^PID: *//p' "$status" 2>/dev/null || true)"
        die "clickhouse: data dir $CH_DATA is in use by pid ${owner:-?} (another stack?); set OONI_CLICKHOUSE_DATA to use another one"
    fi
}

STARTED=()

cmd_start() {
    [[ -x "$PYTHON" && -x "$VENV_BIN/moto_server" && -x "$VENV_BIN/waitress-serve" ]] ||
        die "missing $REPO_ROOT/.venv tools; run scripts/setup.sh first"
    command -v curl >/dev/null || die "curl is required"
    START_MS="$(now_ms)"
    check_port clickhouse "$CH_PID" "$CH_NEEDLE" "$CH_PORT" OONI_CLICKHOUSE_PORT
    check_port moto "$AWS_PID" "$AWS_NEEDLE" "$AWS_PORT" OONI_AWS_PORT
    check_data_dir
    mkdir -p "$LOCAL_DIR" "$CH_DATA" "$CH_RUN"
    start_service clickhouse "$CH_PID" "$CH_LOG" "$CH_PORT" "$CH_NEEDLE" -- \
        "$PYTHON" "$CH_SCRIPT" --port "$CH_PORT" --data-dir "$CH_DATA" --run-dir "$CH_RUN"
    start_service moto "$AWS_PID" "$AWS_LOG" "$AWS_PORT" "$AWS_NEEDLE" -- \
        "$PYTHON" "$AWS_SCRIPT" -H 127.0.0.1 -p "$AWS_PORT" --threads 8
    if ! cmd_wait; then
        # Leave things as they were: stop what this invocation started.
        if ((${#STARTED[@]})); then
            say "start failed; stopping what this run started: ${STARTED[*]}"
            [[ " ${STARTED[*]} " == *" moto "* ]] && stop_service moto "$AWS_PID" "$AWS_NEEDLE"
            [[ " ${STARTED[*]} " == *" clickhouse "* ]] && stop_service clickhouse "$CH_PID" "$CH_NEEDLE"
        fi
        return 1
    fi
}

# wait_one NAME PIDFILE NEEDLE LOGFILE CHECKFN
wait_one() {
    local name="$1" pidfile="$2" needle="$3" logfile="$4" check="$5" pid deadline
    deadline=$(($(now_ms) + TIMEOUT * 1000))
    while :; do
        pid="$(live_pid "$pidfile" "$needle")"
        if [[ -z "$pid" ]]; then
            printf 'stack: error: %s is not running; last log lines (%s):\n' "$name" "$logfile" >&2
            tail -n 15 "$logfile" >&2 2>/dev/null || true
            return 1
        fi
        if "$check"; then
            say "$name ready (pid $pid, $(($(now_ms) - ${START_MS:-$(now_ms)})) ms)"
            return 0
        fi
        if (($(now_ms) > deadline)); then
            printf 'stack: error: %s (pid %s) did not answer within %ss; see %s\n' "$name" "$pid" "$TIMEOUT" "$logfile" >&2
            return 1
        fi
        sleep 0.05
    done
}

cmd_wait() {
    local rc=0
    START_MS="${START_MS:-$(now_ms)}"
    wait_one clickhouse "$CH_PID" "$CH_NEEDLE" "$CH_LOG" ch_answers || rc=1
    wait_one moto "$AWS_PID" "$AWS_NEEDLE" "$AWS_LOG" aws_answers || rc=1
    return "$rc"
}

# stop_service NAME PIDFILE NEEDLE
stop_service() {
    local name="$1" pidfile="$2" needle="$3" pid deadline
    pid="$(live_pid "$pidfile" "$needle")"
    if [[ -z "$pid" ]]; then
        if [[ -f "$pidfile" ]]; then say "$name: removing stale pid file"; rm -f "$pidfile"; fi
        say "$name not running"
        return 0
    fi
    # The service leads its own process group (setsid), so signal the group: nothing it
    # spawned can outlive it. Our pid is the group id.
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    deadline=$(($(now_ms) + TIMEOUT * 1000))
    while kill -0 "$pid" 2>/dev/null && (($(now_ms) < deadline)); do sleep 0.05; done
    if kill -0 "$pid" 2>/dev/null; then
        say "$name (pid $pid) ignored TERM for ${TIMEOUT}s; sending KILL"
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    fi
    # Anything left in the group (should be nothing) gets KILL too.
    if pgrep -g "$pid" >/dev/null 2>&1; then kill -KILL -- "-$pid" 2>/dev/null || true; fi
    rm -f "$pidfile"
    say "$name stopped (pid $pid)"
}

cmd_stop() {
    stop_service moto "$AWS_PID" "$AWS_NEEDLE"
    stop_service clickhouse "$CH_PID" "$CH_NEEDLE"
}

cmd_status() {
    local rc=0 pid
    pid="$(live_pid "$CH_PID" "$CH_NEEDLE")"
    if [[ -n "$pid" ]] && ch_answers; then
        say "clickhouse running (pid $pid) http://127.0.0.1:$CH_PORT data $CH_DATA"
    elif [[ -n "$pid" ]]; then
        say "clickhouse starting or unresponsive (pid $pid) port $CH_PORT"; rc=3
    else
        say "clickhouse stopped (port $CH_PORT)"; rc=3
    fi
    pid="$(live_pid "$AWS_PID" "$AWS_NEEDLE")"
    if [[ -n "$pid" ]] && aws_answers; then
        say "moto running (pid $pid) http://127.0.0.1:$AWS_PORT"
    elif [[ -n "$pid" ]]; then
        say "moto starting or unresponsive (pid $pid) port $AWS_PORT"; rc=3
    else
        say "moto stopped (port $AWS_PORT)"; rc=3
    fi
    return "$rc"
}

# One start/stop at a time (two concurrent `start`s would race on the pid files).
lock() {
    mkdir -p "$LOCAL_DIR"
    exec 9>"$LOCAL_DIR/stack.lock"
    flock 9
}

case "${1:-}" in
    start) lock; cmd_start ;;
    stop) lock; cmd_stop ;;
    status) cmd_status ;;
    wait) cmd_wait ;;
    restart) lock; cmd_stop; cmd_start ;;
    *) sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
