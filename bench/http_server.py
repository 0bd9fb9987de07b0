"""Real HTTP for the benches: gunicorn started the way `make run` starts it (scripts/services.sh:
the same config file, backend/gunicorn.conf.py), on a port of the bench's own, against the bench
database, and a bare WSGI hello-world served by the same config as the floor of the server itself.

The server runs the development profile as `make run` does (the application's database role, the
owner for schema work), not the test profile the bench process itself uses."""

from __future__ import annotations

import http.client
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"
CONFIG = ROOT / "backend" / "gunicorn.conf.py"
HELLO_BODY = b'{"hello":"world"}'
# port -> the pid of the gunicorn master serving it (while it runs), for a profiler to attach to.
SERVERS: dict[int, int] = {}


def hello(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """The least a WSGI application can do: what the server alone costs per request."""
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(HELLO_BODY)))])
    return [HELLO_BODY]


def server_environment(database_url: str, app_role: str = "tsunagu_app") -> dict[str, str]:
    """`make run`'s environment for a server on the bench database: the development profile,
    connected as the application's role, the owner's URL for schema work."""
    owner = urlparse(database_url)
    env = {k: v for k, v in os.environ.items() if k not in {"TSUNAGU_ENV", "DJANGO_SETTINGS_MODULE", "DEBUG"}}
    env["DATABASE_OWNER_URL"] = database_url
    env["DATABASE_URL"] = f"postgis://{app_role}@{owner.hostname}:{owner.port}{owner.path}"
    env["PYTHONPATH"] = str(ROOT)
    return env


@contextmanager
def gunicorn(port: int, *, app: str | None = None, env: dict[str, str] | None = None) -> Iterator[str]:
    """gunicorn with `make run`'s arguments (scripts/services.sh) on 127.0.0.1:`port`; `app`
    replaces the config's wsgi_app. Yields the base URL; stops the server (its pid only) after."""
    logs = tempfile.mkdtemp(prefix="tsunagu-bench-http-")
    command = [str(GUNICORN), "-c", str(CONFIG), "--bind", f"127.0.0.1:{port}",
               "--access-logfile", f"{logs}/access.log", "--error-logfile", f"{logs}/web.log"]
    if app:
        command.append(app)
    output = open(f"{logs}/app.log", "wb")  # noqa: SIM115 - open while the server runs
    process = subprocess.Popen(command, cwd=ROOT, env=env or dict(os.environ), stdout=output, stderr=output)
    failed = True
    try:
        _wait_until_up(port, process, logs)
        SERVERS[port] = process.pid
        yield f"http://127.0.0.1:{port}"
        failed = False
    finally:
        SERVERS.pop(port, None)
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        output.close()
        if failed:
            sys.stderr.write(f"gunicorn on port {port}: its logs are in {logs}\n")
        else:
            shutil.rmtree(logs, ignore_errors=True)


def _wait_until_up(port: int, process: subprocess.Popen, logs: str) -> None:
    for _ in range(300):
        if process.poll() is not None:
            sys.stderr.write(Path(f"{logs}/app.log").read_text(errors="replace")[-3000:])
            raise RuntimeError(f"gunicorn on port {port} exited with {process.returncode}")
        try:
            status, _ = get(port, "/")
        except OSError:
            time.sleep(0.1)
            continue
        if status:
            return
    raise RuntimeError(f"gunicorn on port {port} did not answer")


def get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """One request on a new connection, as a client of the sync workers gets it (they close the
    connection after every response)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()
