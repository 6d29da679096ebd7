#!/usr/bin/env python3
"""Serve moto's AWS emulator (S3, SQS, DynamoDB, EventBridge, ...) on 127.0.0.1 with keep-alive.

Local development, tests and benchmarks only.

Why not plain ``moto_server``: it runs moto's WSGI app on Werkzeug's development
server, which answers every request with ``Connection: close``. Every S3/SQS/DynamoDB
call of the project then opens a new TCP connection, and the project's processes
spend a fifth of their CPU in the kernel's connect/shutdown paths (measured with
``perf`` in the end-to-end benchmark) and leave thousands of TIME_WAIT sockets —
a cost that real AWS endpoints, which keep connections alive, never impose.

Here the very same app (``DomainDispatcherApplication(create_backend_app)``, as
``moto.server.main`` builds it) runs on waitress, a maintained pure-Python WSGI
server with HTTP/1.1 persistent connections, so the SDK's connection pools work as
they do against AWS. The command line is ``moto_server``'s: ``-H HOST -p PORT``.

One difference from Werkzeug's server, on purpose: waitress drops request headers
whose names contain an underscore (they are ambiguous in WSGI). The project sends
no such header (no S3 user metadata).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=int(os.environ.get("MOTO_PORT", "5000")))
    parser.add_argument("--threads", type=int, default=8, help="waitress worker threads")
    args = parser.parse_args(argv)
    # moto builds its own URLs (SQS queue URLs, presigned links) from MOTO_PORT.
    os.environ.setdefault("MOTO_PORT", str(args.port))

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from waitress import serve

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    app = DomainDispatcherApplication(create_backend_app)
    # Large PUTs (postcans are up to 20 MB) and many idle pooled connections are normal here.
    serve(
        app,
        host=args.host,
        port=args.port,
        threads=args.threads,
        connection_limit=1000,
        channel_timeout=300,
        max_request_body_size=1 << 31,
        ident="moto",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
