#!/usr/bin/env python3
"""Serve ClickHouse's own HTTP interface on 127.0.0.1 from the embedded chdb engine.

Local development and tests only: no Docker, no clickhouse-server package.

How it works
------------
chdb's module-level ``chdb._chdb.query(sql, fmt, path=DATA_DIR)`` runs the whole
clickhouse-local program once per process. clickhouse-local reads ``./config.xml``
from the current directory, so we chdir into a run dir holding a config with
``<http_port>`` and ``<listen_host>127.0.0.1</listen_host>``. The statement
``SYSTEM START LISTEN HTTP`` then opens the real ClickHouse HTTP handler (the
same code a clickhouse-server runs). The listener only lives while that call
runs, so the same call ends with a query that never finishes (``sleepEachRow``
over a huge ``numbers()``), run in a thread. The sleeper carries a unique marker
comment; on SIGTERM/SIGINT we kill exactly that query over HTTP, the call
returns, and we exit 0. If the call returns on its own (port in use: Code 210,
data dir locked by another process: Code 76, ...) we exit with that code.

ClickHouse writes its errors to file descriptor 2, not into the result object,
so fd 2 is routed through a pipe that is copied to the real stderr and scanned
for ``Code: N.``.

Only the default user exists, without a password, bound to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

CODE_RE = re.compile(rb"Code: (\d+)\.")

CONFIG_TEMPLATE = """<clickhouse>
    <!-- Written by infra/local/clickhouse_server.py; rewritten on every start. -->
    <listen_host>127.0.0.1</listen_host>
    <http_port>{port}</http_port>
</clickhouse>
"""


def log(msg: str) -> None:
    sys.stderr.write(f"clickhouse_server: {msg}\n")
    sys.stderr.flush()


class StderrTee:
    """Route fd 2 through a pipe: copy everything to the real stderr, remember error codes."""

    def __init__(self) -> None:
        self.real_fd = os.dup(2)
        read_fd, self.write_fd = os.pipe()
        os.dup2(self.write_fd, 2)
        self.read_file = os.fdopen(read_fd, "rb", buffering=0)
        self.codes: list[int] = []
        self.thread = threading.Thread(target=self._pump, name="stderr-tee", daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        pending = b""
        while True:
            chunk = self.read_file.read(65536)
            if not chunk:
                break
            os.write(self.real_fd, chunk)
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                for m in CODE_RE.finditer(line):
                    self.codes.append(int(m.group(1)))
        for m in CODE_RE.finditer(pending):
            self.codes.append(int(m.group(1)))

    def close(self) -> None:
        """Put the real stderr back and drain the pipe."""
        sys.stderr.flush()
        os.dup2(self.real_fd, 2)
        os.close(self.write_fd)
        self.thread.join(timeout=5)


def http_get(port: int, path: str, timeout: float = 1.0) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as resp:
        return resp.read()


def http_post(port: int, sql: str, timeout: float = 30.0) -> bytes:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/", data=sql.encode(), method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.read()


def parse_args(argv: list[str]) -> argparse.Namespace:
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(os.path.dirname(here))
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=8123, help="HTTP port on 127.0.0.1 (default 8123)")
    p.add_argument(
        "--data-dir",
        default=os.path.join(repo, ".local", "clickhouse-data"),
        help="ClickHouse data directory (default <repo>/.local/clickhouse-data)",
    )
    p.add_argument(
        "--run-dir",
        default=None,
        help="directory for config.xml; the process chdirs here (default <data-dir>.run)",
    )
    p.add_argument(
        "--ready-timeout",
        type=float,
        default=60.0,
        help="seconds to wait for GET /ping before giving up (default 60)",
    )
    args = p.parse_args(argv)
    args.data_dir = os.path.abspath(args.data_dir)
    args.run_dir = os.path.abspath(args.run_dir or args.data_dir.rstrip("/") + ".run")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    os.makedirs(args.data_dir, exist_ok=True)
    os.makedirs(args.run_dir, exist_ok=True)
    with open(os.path.join(args.run_dir, "config.xml"), "w", encoding="utf-8") as f:
        f.write(CONFIG_TEMPLATE.format(port=args.port))
    os.chdir(args.run_dir)

    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    started = time.monotonic()
    tee = StderrTee()
    import chdb._chdb as chdb_native  # noqa: E402  (import after fd 2 is teed)

    marker = f"ooni-local-sleeper-{uuid.uuid4().hex}"
    sql = (
        "SYSTEM START LISTEN HTTP;\n"
        f"SELECT sleepEachRow(0.2) /* {marker} */ FROM numbers(1000000000000) "
        "SETTINGS max_block_size = 1, function_sleep_max_microseconds_per_block = 0, "
        "max_execution_time = 0 FORMAT Null"
    )
    outcome: dict[str, object] = {}

    def serve() -> None:
        try:
            chdb_native.query(sql, "TabSeparated", path=args.data_dir)
        except BaseException as exc:  # noqa: BLE001 - reported and turned into an exit code
            outcome["exception"] = exc

    worker = threading.Thread(target=serve, name="chdb", daemon=True)
    worker.start()

    # The marker is only ever written split in two, so these statements do not match themselves.
    head, tail = marker[:12], marker[12:]
    ours = f"query LIKE concat('%', '{head}', '{tail}', '%')"

    # Ready = /ping answers and that server runs our sleeper (not some other server that
    # happens to hold the port while our listener is failing with "address in use").
    ready = False
    deadline = started + args.ready_timeout
    while not stop.is_set() and worker.is_alive() and time.monotonic() < deadline:
        try:
            if (
                http_get(args.port, "/ping", timeout=0.5) == b"Ok.\n"
                and http_post(args.port, f"SELECT count() FROM system.processes WHERE {ours}", 2)
                == b"1\n"
            ):
                ready = True
                break
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.05)

    if ready:
        elapsed = time.monotonic() - started
        # chdb may install process-wide signal handlers while it starts; make sure ours win.
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        print(
            f"clickhouse ready on http://127.0.0.1:{args.port} "
            f"(pid {os.getpid()}, data {args.data_dir}, {elapsed:.2f}s)",
            flush=True,
        )
        while not stop.is_set() and worker.is_alive():
            stop.wait(0.5)

    if worker.is_alive():
        # Stop requested (possibly while still starting) or the ready timeout hit: end only
        # our own sleeper. Retry until the call returns: before the listener and the sleeper
        # are up there is nothing to kill yet.
        kill = f"KILL QUERY WHERE {ours} AND query NOT LIKE 'KILL%' SYNC"
        deadline = time.monotonic() + 30
        last_error: Exception | None = None
        while worker.is_alive() and time.monotonic() < deadline:
            try:
                http_post(args.port, kill, timeout=10)
            except (urllib.error.URLError, OSError) as exc:
                last_error = exc
            worker.join(timeout=0.2)
        tee.close()
        if worker.is_alive():
            log(f"chdb call did not return after KILL QUERY (last error: {last_error}); exiting hard")
            sys.stdout.flush()
            os._exit(1)
        if stop.is_set():
            return 0
        log(f"GET /ping did not answer Ok. within {args.ready_timeout:.0f}s")
        return 1

    # The call returned by itself: the listener never came up or the sleeper died.
    tee.close()
    if "exception" in outcome:
        log(f"chdb raised: {outcome['exception']!r}")
    codes = [c for c in tee.codes if c != 0]
    code = codes[0] if codes else 1
    hints = {210: "port in use", 76: "data dir locked by another process?"}
    log(
        f"chdb call returned without being stopped (ClickHouse code {code}"
        f"{', ' + hints[code] if code in hints else ''}); exiting"
    )
    return code if 0 < code < 256 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
