#!/usr/bin/env python3
"""Check the migrations against a live ClickHouse HTTP endpoint (e.g. infra/local/stack.sh).

Creates a throw-away database, applies every infra/migrations/NNNN_*.sql twice with the
splitting rule of README.md (the second pass proves idempotence), optionally loads SQL
fixture files (one statement per line, `--` lines skipped), runs a few sanity checks,
prints a table summary and drops the database (unless --keep).

    .venv/bin/python infra/migrations/verify.py --port 8123 [--fixtures a.sql b.sql ...]

Not the migration runner: it records nothing in schema_migrations.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
FILE_RE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
SEPARATOR_RE = re.compile(r"^[ \t]*;[ \t]*$", re.MULTILINE)


class ClickHouseError(Exception):
    pass


def split_statements(text: str) -> list[str]:
    """The README rule: split on lines holding only `;`, trim, drop comment-only chunks."""
    out = []
    for chunk in SEPARATOR_RE.split(text):
        chunk = chunk.strip()
        body = "\n".join(l for l in chunk.splitlines() if not l.strip().startswith("--")).strip()
        if body:
            out.append(chunk)
    return out


def query(port: int, sql: str, database: str | None = None) -> str:
    params = {"database": database} if database else {}
    url = f"http://127.0.0.1:{port}/?" + urllib.parse.urlencode(params)
    req = urllib.request.Request(url, data=sql.encode(), method="POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.read().decode()
    except urllib.error.HTTPError as exc:
        raise ClickHouseError(exc.read().decode(errors="replace").strip()) from None


def migration_files() -> list[str]:
    names = sorted(n for n in os.listdir(HERE) if n.endswith(".sql"))
    bad = [n for n in names if not FILE_RE.match(n)]
    if bad:
        raise SystemExit(f"badly named migration files: {bad}")
    versions = [n[:4] for n in names]
    if len(set(versions)) != len(versions):
        raise SystemExit(f"duplicate migration versions in {names}")
    return names


def apply_all(port: int, db: str) -> int:
    count = 0
    for name in migration_files():
        with open(os.path.join(HERE, name), encoding="utf-8") as f:
            stmts = split_statements(f.read())
        if not stmts:
            raise SystemExit(f"{name}: no statements")
        for i, stmt in enumerate(stmts, 1):
            if stmt.rstrip().endswith(";"):
                raise SystemExit(f"{name} statement {i}: ends with ';' (use a separator line)")
            try:
                query(port, stmt, db)
            except ClickHouseError as exc:
                raise SystemExit(f"{name} statement {i} failed: {exc}") from None
            count += 1
    return count


def load_fixture(port: int, db: str, path: str) -> int:
    n = 0
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("--"):
                continue
            try:
                query(port, line.rstrip(";"), db)
            except ClickHouseError as exc:
                raise SystemExit(f"{path}:{lineno} failed: {exc}") from None
            n += 1
    return n


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=int(os.environ.get("OONI_CLICKHOUSE_PORT", "8123")))
    p.add_argument("--database", default=None, help="default: migcheck_<random>")
    p.add_argument("--fixtures", nargs="*", default=[])
    p.add_argument("--keep", action="store_true", help="do not drop the database at the end")
    args = p.parse_args()
    db = args.database or f"migcheck_{uuid.uuid4().hex[:12]}"

    query(args.port, f"CREATE DATABASE IF NOT EXISTS {db}")
    try:
        for attempt in (1, 2):
            t0 = time.monotonic()
            n = apply_all(args.port, db)
            print(f"pass {attempt}: {n} statements applied in {time.monotonic() - t0:.2f}s")
        groups = query(args.port, "SELECT count() FROM test_groups", db).strip()
        if groups != "23":
            raise SystemExit(f"test_groups holds {groups} rows after two passes, expected 23")
        for path in args.fixtures:
            t0 = time.monotonic()
            n = load_fixture(args.port, db, path)
            print(f"fixture {os.path.basename(path)}: {n} statements in {time.monotonic() - t0:.2f}s")
        print(
            query(
                args.port,
                "SELECT name, engine, total_rows FROM system.tables "
                f"WHERE database = '{db}' ORDER BY name FORMAT PrettyCompactNoEscapes",
            ),
            end="",
        )
    finally:
        if not args.keep:
            query(args.port, f"DROP DATABASE IF EXISTS {db} SYNC")
    return 0


if __name__ == "__main__":
    sys.exit(main())
