#!/usr/bin/env python3
"""A stateful stand-in for the DigitalOcean v2 endpoints `JobTestHelperRotation` uses.

Droplets by tag (list, create, delete) and the records of any domain (list, create, update,
delete), kept in memory. TXT records are also set on (and cleared from) pebble-challtestsrv
through its management API, so the ACME server's DNS-01 validation sees them: the fake plays
the zone's DNS as DigitalOcean would. Every request needs `Authorization: Bearer <token>`.

Environment: OONI_SMOKE_DO_PORT (28190; bound on 127.0.0.1), OONI_SMOKE_DO_TOKEN (required),
OONI_SMOKE_DNS_API (challtestsrv's management URL, e.g. http://127.0.0.1:28192).
Stdlib only (`scripts/smoketest.sh` runs it with the system python3).
"""

import json
import os
import re
import threading
import urllib.request
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

PORT = int(os.environ.get("OONI_SMOKE_DO_PORT") or "28190")
TOKEN = os.environ["OONI_SMOKE_DO_TOKEN"]
DNS_API = os.environ.get("OONI_SMOKE_DNS_API", "").rstrip("/")

LOCK = threading.Lock()
STATE = {"next": 0, "droplets": [], "records": {}}  # records: zone -> list of dicts


def created_at(name):
    """The spawn time the job encodes in the name (`roaming-th-<rdn>-<YYYYmmddHHMMSS>`)."""
    m = re.search(r"-(\d{14})$", name)
    when = (
        datetime.strptime(m.group(1), "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc)
        if m
        else datetime.now(timezone.utc)
    )
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def challtestsrv(path, body):
    if not DNS_API:
        return
    req = urllib.request.Request(
        DNS_API + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        resp.read()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, status, body=None):
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            return json.loads(raw) if raw else {}
        except ValueError:
            return None

    def handle_any(self, method):
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self.reply(401, {"id": "unauthorized", "message": "Unable to authenticate you"})
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        body = self.body() if method in ("POST", "PUT") else {}
        if body is None:
            return self.reply(400, {"id": "bad_request", "message": "invalid JSON"})
        parts = url.path.strip("/").split("/")
        with LOCK:
            if parts[:2] == ["v2", "droplets"]:
                return self.droplets(method, parts[2:], query, body)
            if parts[:2] == ["v2", "domains"] and len(parts) >= 4 and parts[3] == "records":
                return self.records(method, parts[2], parts[4:], body)
        return self.reply(404, {"id": "not_found", "message": "not found"})

    def droplets(self, method, rest, query, body):
        if method == "GET" and not rest:
            tag = (query.get("tag_name") or [None])[0]
            found = [d for d in STATE["droplets"] if tag is None or tag in d["tags"]]
            return self.reply(200, {"droplets": found, "meta": {"total": len(found)}})
        if method == "POST" and not rest:
            missing = [k for k in ("name", "region", "size", "image") if not body.get(k)]
            if missing:
                return self.reply(422, {"id": "unprocessable_entity", "message": f"missing {missing}"})
            STATE["next"] += 1
            d = {
                "id": STATE["next"],
                "name": body["name"],
                "status": "new",
                "created_at": created_at(body["name"]),
                "region": {"slug": body["region"]},
                "size_slug": body["size"],
                "networks": {"v4": [], "v6": []},
                "tags": list(body.get("tags") or []),
                "user_data_bytes": len(body.get("user_data") or ""),
            }
            STATE["droplets"].append(d)
            return self.reply(202, {"droplet": d})
        if method == "DELETE" and len(rest) == 1 and rest[0].isdigit():
            before = len(STATE["droplets"])
            STATE["droplets"] = [d for d in STATE["droplets"] if d["id"] != int(rest[0])]
            if len(STATE["droplets"]) == before:
                return self.reply(404, {"id": "not_found", "message": "droplet not found"})
            return self.reply(204)
        return self.reply(404, {"id": "not_found", "message": "not found"})

    def records(self, method, zone, rest, body):
        recs = STATE["records"].setdefault(zone, [])
        fqdn = lambda r: f"{r['name']}.{zone}." if r["name"] != "@" else f"{zone}."
        if method == "GET" and not rest:
            return self.reply(200, {"domain_records": recs, "meta": {"total": len(recs)}})
        if method == "POST" and not rest:
            if not all(body.get(k) for k in ("type", "name", "data")):
                return self.reply(422, {"id": "unprocessable_entity", "message": "type, name, data"})
            STATE["next"] += 1
            r = {"id": STATE["next"], "type": body["type"], "name": body["name"],
                 "data": body["data"], "ttl": body.get("ttl", 1800)}
            if r["type"] == "TXT":
                challtestsrv("/set-txt", {"host": fqdn(r), "value": r["data"]})
            recs.append(r)
            return self.reply(201, {"domain_record": r})
        if len(rest) != 1 or not rest[0].isdigit():
            return self.reply(404, {"id": "not_found", "message": "not found"})
        match = [r for r in recs if r["id"] == int(rest[0])]
        if not match:
            return self.reply(404, {"id": "not_found", "message": "record not found"})
        r = match[0]
        if method == "PUT":
            r.update({k: body[k] for k in ("data", "name", "ttl") if k in body})
            if r["type"] == "TXT":
                challtestsrv("/set-txt", {"host": fqdn(r), "value": r["data"]})
            return self.reply(200, {"domain_record": r})
        if method == "DELETE":
            recs.remove(r)
            if r["type"] == "TXT":
                challtestsrv("/clear-txt", {"host": fqdn(r)})
            return self.reply(204)
        return self.reply(405, {"id": "method_not_allowed", "message": method})

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def do_PUT(self):
        self.handle_any("PUT")

    def do_DELETE(self):
        self.handle_any("DELETE")


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
