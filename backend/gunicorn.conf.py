"""gunicorn's settings, in one place for `make run` (scripts/services.sh), the Dockerfile and
compose.yaml: `gunicorn -c backend/gunicorn.conf.py [--bind …] [--workers …]`.

The application refuses over-long URIs and headers and over-large declared bodies itself, with the
API's JSON error body (backend/edge.py, limits in settings). gunicorn's limits are set above those,
so that the application is the one that answers; what still trips gunicorn's (bounded) limits, and
any other request gunicorn cannot parse, is answered with the same JSON body (see below).
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

wsgi_app = "backend.wsgi:application"
bind = os.environ.get("TSUNAGU_BIND", "127.0.0.1:8000")
# Sync workers: one request at a time each, so each holds one persistent database connection
# (CONN_MAX_AGE in settings; README "make run serves as production would").
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
# Django is loaded once in the master and the workers are forked from it (faster restarts, shared
# memory). The master must not hand a database connection to its children: see pre_fork.
preload_app = True

# 8190 is gunicorn's largest bounded request line; 0 would mean unbounded, and gunicorn buffers
# (and re-copies) the whole line while looking for its end. Above TSUNAGU_MAX_URI_BYTES (8000).
limit_request_line = 8190
# Above TSUNAGU_MAX_HEADERS (100) and TSUNAGU_MAX_HEADER_BYTES (8192). gunicorn buffers up to
# fields x field size of headers, so neither is unbounded.
limit_request_fields = 150
limit_request_field_size = 16384


def _json_error_page(sock, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's own error answer (it writes an HTML page), with the API's JSON error body."""
    from gunicorn import util

    from backend.edge import REASONS, error_json
    from backend.errors import CODES_BY_STATUS

    status_int = int(status_int)
    reason = REASONS.get(status_int, reason)
    message = {
        414: "The request line is too long.",
        431: "The request's header fields are too large or too many.",
    }.get(status_int, f"The server could not process the request ({reason}).")
    body = error_json(CODES_BY_STATUS.get(status_int, "bad_request" if status_int < 500 else "server_error"), message)
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


def on_starting(server) -> None:
    # Workers are forked from the master, so they inherit this. gunicorn's workers call
    # util.write_error for every request they cannot hand to the application.
    from gunicorn import util

    util.write_error = _json_error_page


def when_ready(server) -> None:
    # Once, in the master, after the application is loaded and before the first worker is forked:
    # the loaded application goes to the permanent generation, and the workers inherit the
    # collector's thresholds (backend/runtime.py).
    if "django" in sys.modules:
        from backend import runtime

        runtime.settle()


def pre_fork(server, worker) -> None:
    # A connection opened while loading the application would be shared by every forked worker
    # (one socket, interleaved protocol); none is expected, and none survives to the fork.
    if "django" in sys.modules:
        from django.db import connections

        connections.close_all()
