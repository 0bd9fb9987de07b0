"""Limits answered in front of Django, with the API's JSON error body.

A URI, a header or a declared body that is too large is refused here, before Django builds a
request or reads a byte of the body: 414 (URI), 431 (one header field too large, or too many), 413
(Content-Length above the limit: DATA_UPLOAD_MAX_MEMORY_SIZE, or PHOTO_MAX_BYTES for photo uploads).
The web server's own limits (backend/gunicorn.conf.py) sit above these, and its own error answers
are made JSON there too, so a client never gets an HTML error page from the layers in front.

This module must stay importable without Django settings: gunicorn's config file imports it.
"""

import json
from collections.abc import Callable, Iterable
from typing import Any

from backend.errors import CODES_BY_STATUS, error_body

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict, StartResponse], Iterable[bytes]]

# Photo uploads (PUT /api/v1/sync/photos/{id}) carry raw image bytes with their own, larger limit.
# The edge runs before URL resolution, so the prefix is spelled out (a test checks it against the URL).
PHOTO_UPLOAD_PREFIX = "/api/v1/sync/photos/"

REASONS = {
    400: "Bad Request",
    403: "Forbidden",
    413: "Content Too Large",
    414: "URI Too Long",
    417: "Expectation Failed",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
}


def error_json(code: str, message: str, details: Any = None) -> bytes:
    return json.dumps(error_body(code, message, details), ensure_ascii=False).encode()


def _refuse(start_response: StartResponse, status: int, message: str, details: Any = None) -> list[bytes]:
    body = error_json(CODES_BY_STATUS[status], message, details)
    start_response(
        f"{status} {REASONS[status]}",
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            # The body of a refused request may still be on its way; do not read it for a next request.
            ("Connection", "close"),
        ],
    )
    return [body]


def _uri_bytes(environ: dict) -> int:
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw is not None:
        return len(raw.encode("latin-1", "replace"))
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    query = environ.get("QUERY_STRING", "")
    return len(path.encode("latin-1", "replace")) + (len(query) + 1 if query else 0)


def _header_fields(environ: dict) -> Iterable[tuple[str, str]]:
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            yield key[5:].replace("_", "-"), value
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            yield key.replace("_", "-"), value


class EdgeLimits:
    """WSGI middleware: refuses over-limit requests with JSON before the wrapped app runs."""

    def __init__(
        self,
        app: WSGIApp,
        *,
        max_uri_bytes: int,
        max_header_bytes: int,
        max_headers: int,
        max_body_bytes: int,
        max_photo_bytes: int,
    ) -> None:
        self.app = app
        self.max_uri_bytes = max_uri_bytes
        self.max_header_bytes = max_header_bytes
        self.max_headers = max_headers
        self.max_body_bytes = max_body_bytes
        self.max_photo_bytes = max_photo_bytes

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        refusal = self.check(environ)
        if refusal is not None:
            status, message, details = refusal
            return _refuse(start_response, status, message, details)
        return self.app(environ, start_response)

    def body_limit(self, path: str) -> int:
        return self.max_photo_bytes if path.startswith(PHOTO_UPLOAD_PREFIX) else self.max_body_bytes

    def check(self, environ: dict) -> tuple[int, str, dict] | None:
        uri = _uri_bytes(environ)
        if uri > self.max_uri_bytes:
            return 414, f"The URI is {uri} bytes; the limit is {self.max_uri_bytes}.", {
                "size": uri, "max_bytes": self.max_uri_bytes,
            }
        count = 0
        for name, value in _header_fields(environ):
            count += 1
            size = len(name) + len(value)
            if size > self.max_header_bytes:
                return 431, f"The header {name} is {size} bytes; the limit is {self.max_header_bytes}.", {
                    "header": name, "size": size, "max_bytes": self.max_header_bytes,
                }
        if count > self.max_headers:
            return 431, f"The request has {count} header fields; the limit is {self.max_headers}.", {
                "count": count, "max_headers": self.max_headers,
            }
        declared = environ.get("CONTENT_LENGTH") or ""
        if declared:
            if not declared.isdigit():
                return 400, "Content-Length is not a number.", {"header": "Content-Length"}
            limit = self.body_limit(environ.get("PATH_INFO", ""))
            if int(declared) > limit:
                return 413, f"The request body is {int(declared)} bytes; the limit is {limit} bytes.", {
                    "size": int(declared), "max_bytes": limit,
                }
        return None


def wrap(app: WSGIApp) -> EdgeLimits:
    """The Django application behind the limits in settings (read once, at start-up)."""
    from django.conf import settings

    return EdgeLimits(
        app,
        max_uri_bytes=settings.TSUNAGU_MAX_URI_BYTES,
        max_header_bytes=settings.TSUNAGU_MAX_HEADER_BYTES,
        max_headers=settings.TSUNAGU_MAX_HEADERS,
        max_body_bytes=settings.DATA_UPLOAD_MAX_MEMORY_SIZE,
        max_photo_bytes=settings.PHOTO_MAX_BYTES,
    )
