"""Errors in front of Django are JSON too: the edge's limits (backend/edge.py) in-process, and a
real gunicorn started with backend/gunicorn.conf.py, spoken to over a socket."""

import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote
from wsgiref.util import setup_testing_defaults

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from backend import edge
from tests.api.test_errors import assert_error_body

ROOT = Path(__file__).resolve().parent.parent
LIMITS = {"max_uri_bytes": 100, "max_header_bytes": 50, "max_headers": 10, "max_body_bytes": 1000, "max_photo_bytes": 5000}


class Inner:
    """The wrapped application: records whether it was reached."""

    def __init__(self):
        self.calls = 0

    def __call__(self, environ, start_response):
        self.calls += 1
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"inner"]


def call(app, path="/api/v1/me", method="GET", query="", headers=None, raw_uri=None):
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query, "wsgi.input": io.BytesIO()}
    if raw_uri is not None:
        environ["RAW_URI"] = raw_uri
    for name, value in (headers or {}).items():
        key = name.upper().replace("-", "_")
        environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"] = value
    setup_testing_defaults(environ)
    seen = {}

    def start_response(status, response_headers, exc_info=None):
        seen["status"] = int(status.split()[0])
        seen["headers"] = dict(response_headers)

    body = b"".join(app(environ, start_response))
    return seen["status"], seen["headers"], body


def assert_json_error(status, headers, body, expected_status, code):
    assert status == expected_status, body
    assert headers["Content-Type"] == "application/json"
    assert int(headers["Content-Length"]) == len(body)
    error = json.loads(body)["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["code"] == code and error["message"]
    return error


# --- the edge in-process -------------------------------------------------------------------------


def test_uri_above_the_limit_is_414_before_the_app():
    inner = Inner()
    app = edge.EdgeLimits(inner, **LIMITS)
    assert call(app, "/api/v1/households", query="q=" + "a" * 70)[0] == 200  # 91 bytes
    error = assert_json_error(*call(app, "/api/v1/households", query="q=" + "a" * 90), 414, "uri_too_long")
    assert error["details"]["max_bytes"] == 100
    # the raw request line's URI counts when the server gives it (percent-encoding included)
    assert_json_error(*call(app, "/x", raw_uri="/x?" + "%E3%81%82" * 20), 414, "uri_too_long")
    assert inner.calls == 1


def test_a_large_header_or_too_many_headers_is_431_before_the_app():
    inner = Inner()
    app = edge.EdgeLimits(inner, **LIMITS)
    assert call(app, headers={"X-Note": "a" * 40})[0] == 200
    error = assert_json_error(*call(app, headers={"X-Note": "a" * 50}), 431, "headers_too_large")
    assert error["details"]["header"] == "X-NOTE"
    assert call(app, headers={f"X-H{n}": "1" for n in range(9)})[0] == 200  # and Host: 10
    many = {f"X-H{n}": "1" for n in range(10)}
    error = assert_json_error(*call(app, headers=many), 431, "headers_too_large")
    assert error["details"] == {"count": 11, "max_headers": 10}
    assert inner.calls == 2


def test_declared_body_above_the_limit_is_413_and_photos_have_their_own_limit():
    inner = Inner()
    app = edge.EdgeLimits(inner, **LIMITS)
    photo = f"{edge.PHOTO_UPLOAD_PREFIX}{uuid.uuid4()}"
    assert call(app, "/api/v1/households", "POST", headers={"Content-Length": "1000"})[0] == 200
    error = assert_json_error(
        *call(app, "/api/v1/households", "POST", headers={"Content-Length": "1001"}), 413, "too_large"
    )
    assert error["details"] == {"size": 1001, "max_bytes": 1000}
    assert call(app, photo, "PUT", headers={"Content-Length": "5000"})[0] == 200
    assert_json_error(*call(app, photo, "PUT", headers={"Content-Length": "5001"}), 413, "too_large")
    assert_json_error(*call(app, photo, "PUT", headers={"Content-Length": "12ab"}), 400, "bad_request")
    assert inner.calls == 2


def test_the_photo_prefix_is_where_the_upload_endpoint_is():
    url = reverse("api-v1:upload_photo", kwargs={"photo_id": uuid.uuid4()})
    assert url.startswith(edge.PHOTO_UPLOAD_PREFIX)


def test_the_wsgi_application_is_behind_the_edge_with_the_settings_limits(db):
    from backend.wsgi import application

    assert isinstance(application, edge.EdgeLimits)
    assert application.max_uri_bytes == settings.TSUNAGU_MAX_URI_BYTES
    assert application.max_body_bytes == settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    assert application.max_photo_bytes == settings.PHOTO_MAX_BYTES
    status, headers, body = call(application, "/api/v2/x")
    assert_json_error(status, headers, body, 404, "not_found")


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE", "BREW", "PROPFIND"])
@pytest.mark.parametrize("path", ["/api/v2/x", "/api/v1/nope", "/api/v1/nope/deeper/", "/api/", "/api/v1/%E3%81%82"])
def test_unknown_paths_under_api_are_json_404(path, method):
    # CSRF checks on, as on a real server: a POST to no endpoint is a 404, not a CSRF 403
    assert_error_body(Client(enforce_csrf_checks=True).generic(method, path), 404, "not_found")


# --- a real gunicorn with backend/gunicorn.conf.py -----------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _database_url() -> str:
    db = settings.DATABASES["default"]
    auth = db["USER"] + (f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else "")
    return f"postgis://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture(scope="module")
def server(django_db_setup, tmp_path_factory):
    port = _free_port()
    log = tmp_path_factory.mktemp("gunicorn") / "server.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "backend.settings_test",
        "DATABASE_URL": _database_url(),
        "WEB_CONCURRENCY": "1",
    }
    env.pop("TSUNAGU_BIND", None)
    gunicorn = Path(sys.executable).with_name("gunicorn")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(gunicorn), "-c", str(ROOT / "backend" / "gunicorn.conf.py"), "--bind", f"127.0.0.1:{port}"],
            cwd=tmp_path_factory.mktemp("cwd"), env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                status, _, _ = raw(port, b"GET /api/v1/nope HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                if status == 404:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.3)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def raw(port: int, request: bytes) -> tuple[int, dict, bytes]:
    """Send bytes, read the answer until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request)  # the server may answer and close before taking everything
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    if headers.get("transfer-encoding") == "chunked":
        body = _dechunk(body)
        headers["content-length"] = str(len(body))
    return int(lines[0].split()[1]), headers, body


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size, _, data = data.partition(b"\r\n")
        n = int(size.split(b";")[0], 16)
        if n == 0:
            break
        out, data = out + data[:n], data[n + 2 :]
    return out


def request(port: int, target: str, method: str = "GET", headers: list[tuple[str, str]] = (), body: bytes = b"") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close", *(f"{k}: {v}" for k, v in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def assert_raw_json_error(answer, status: int, code: str) -> dict:
    got, headers, body = answer
    assert got == status, body
    assert headers["content-type"] == "application/json"
    assert int(headers["content-length"]) == len(body)
    error = json.loads(body)["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["code"] == code and error["message"]
    return error


@pytest.mark.slow
def test_gunicorn_answers_414_in_json(server):
    # above our limit, within gunicorn's request line: our edge answers
    error = assert_raw_json_error(
        raw(server, request(server, "/api/v1/households?q=" + "a" * 8100)), 414, "uri_too_long"
    )
    assert error["details"]["max_bytes"] == settings.TSUNAGU_MAX_URI_BYTES
    # beyond gunicorn's own bounded request line: gunicorn answers, in the same JSON
    assert_raw_json_error(raw(server, request(server, "/api/v1/households?q=" + "a" * 20000)), 414, "uri_too_long")


@pytest.mark.slow
def test_gunicorn_answers_431_in_json(server):
    error = assert_raw_json_error(
        raw(server, request(server, "/api/v1/me", headers=[("X-Note", "a" * 10000)])), 431, "headers_too_large"
    )
    assert error["details"]["header"] == "X-NOTE"
    many = [(f"X-H{n}", "1") for n in range(120)]
    error = assert_raw_json_error(raw(server, request(server, "/api/v1/me", headers=many)), 431, "headers_too_large")
    assert error["details"]["max_headers"] == settings.TSUNAGU_MAX_HEADERS
    # beyond gunicorn's own limits
    huge = [("X-Note", "a" * 20000)]
    assert_raw_json_error(raw(server, request(server, "/api/v1/me", headers=huge)), 431, "headers_too_large")
    too_many = [(f"X-H{n}", "1") for n in range(400)]
    assert_raw_json_error(raw(server, request(server, "/api/v1/me", headers=too_many)), 431, "headers_too_large")


@pytest.mark.slow
def test_gunicorn_answers_413_in_json_before_reading_the_body(server):
    over = settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1
    answer = raw(server, request(server, "/api/v1/auth/token", "POST", [("Content-Type", "application/json"),
                                                                         ("Content-Length", str(over))]))
    error = assert_raw_json_error(answer, 413, "too_large")
    assert error["details"] == {"size": over, "max_bytes": settings.DATA_UPLOAD_MAX_MEMORY_SIZE}
    photo = f"{edge.PHOTO_UPLOAD_PREFIX}{uuid.uuid4()}?visit_id={uuid.uuid4()}"
    over = settings.PHOTO_MAX_BYTES + 1
    answer = raw(server, request(server, photo, "PUT", [("Content-Type", "image/jpeg"), ("Content-Length", str(over))]))
    error = assert_raw_json_error(answer, 413, "too_large")
    assert error["details"]["max_bytes"] == settings.PHOTO_MAX_BYTES


@pytest.mark.slow
@pytest.mark.parametrize(("method", "path"), [("GET", "/api/v2/x"), ("GET", "/api/v1/nope"), ("POST", "/api/v1/nope"), ("BREW", "/api/v1/nope")])
def test_gunicorn_unknown_api_paths_are_json_404(server, method, path):
    assert_raw_json_error(raw(server, request(server, path, method)), 404, "not_found")


@pytest.mark.slow
def test_gunicorn_own_parse_errors_are_json(server):
    assert_raw_json_error(raw(server, b"get /api/v1/me HTTP/1.1\r\nHost: x\r\n\r\n"), 400, "bad_request")
    assert_raw_json_error(raw(server, b"GET /api/v1/me HTTP/1.1\r\nBad Header\r\n\r\n"), 400, "bad_request")
