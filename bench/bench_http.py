"""The per-request floor over real HTTP: gunicorn started as `make run` starts it (the same config
file, bench/http_server.py), one request at a time on a new connection each, 200 rounds; in each
round every endpoint once, so the machine's noise falls on all of them alike. Medians.

Baselines in the same run: the token lookup a request needs (bench_auth.HOLDER_LOOKUP_SQL) over an
already open psycopg connection as the application's role in the holder's tenant scope, and a bare
WSGI hello-world served by the same gunicorn config. The aim for `/me`: within 3x of their sum.

Then where a request's time goes inside the real server: py-spy samples gunicorn's workers while
`/me` is requested in a loop (PROFILE_SECONDS, 0 to skip), and the samples taken inside a request
are grouped by the code they were in (the innermost frame's package): printed as shares, the
collapsed stacks kept in .local/bench/ for a flame graph."""

import collections
import os
import re
import statistics
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

from bench.bench_auth import HOLDER_LOOKUP_SQL
from bench.common import Figure
from bench.http_server import ROOT, SERVERS, get, gunicorn, server_environment
from bench.maps_data import synthetic_city

ROUNDS = int(os.environ.get("BENCH_HTTP_ROUNDS", "200"))
PORT = int(os.environ.get("BENCH_HTTP_PORT", "8101"))
# Far from the synthetic city (bench/maps_data.py): a neighborhoods tile with nothing in it.
EMPTY_TILE = "/api/v1/maps/tiles/neighborhoods/13/0/0.mvt"
PROFILE_SECONDS = int(os.environ.get("BENCH_HTTP_PROFILE_SECONDS", "15"))
PY_SPY = ROOT / ".venv" / "bin" / "py-spy"

# The innermost frame's file decides the group (first match wins); a sample outside a request (a
# worker waiting for one) is not counted.
GROUPS = (
    ("database (psycopg, waiting for PostgreSQL)", re.compile(r"\((psycopg|psycopg_binary|psycopg_c)/")),
    ("our code (api/, accounts/, backend/, rls/ …)",
     re.compile(r"\((api|accounts|audit|backend|maps|neighborhoods|outreach|reports|rls|visits)/")),
    ("django-ninja + pydantic (parsing, schemas)", re.compile(r"\((ninja|pydantic|pydantic_core)/")),
    ("Django (handler, middleware, ORM)", re.compile(r"\(django/")),
    ("gunicorn (HTTP parsing, writing)", re.compile(r"\(gunicorn/")),
    ("the rest (stdlib, socket, orjson)", re.compile(r".")),
)
IN_REQUEST = re.compile(r"handle_request \(gunicorn/")


def _timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _holder() -> tuple[int, str]:
    from accounts.models import User
    from accounts.roles import Role
    from accounts.services import issue_device_token

    city = synthetic_city(code="999301", hoods=200, households=5_000)
    town = city["municipality"]
    user = User.objects.filter(municipality=town, role=Role.COORDINATOR).order_by("pk").first()
    assert user is not None
    _token, raw = issue_device_token(user=user, device_name="bench-http")
    return town.pk, raw


def _raw_lookup(database_url: str, municipality_id: int, raw: str) -> Callable[[], object]:
    """The lookup alone, on a connection opened once, as the server's role and tenant."""
    from urllib.parse import urlparse

    from accounts.services import hash_token

    url = urlparse(server_environment(database_url)["DATABASE_URL"])
    conn = psycopg.connect(host=url.hostname, port=url.port, user=url.username, dbname=url.path.lstrip("/"),
                           autocommit=True)
    conn.execute("SELECT set_config('tsunagu.municipality_id', %s, false)", [str(municipality_id)])
    token_hash = hash_token(raw)

    def lookup() -> object:
        rows = conn.execute(HOLDER_LOOKUP_SQL, [token_hash]).fetchall()
        assert rows, "the raw lookup found no token"
        return rows

    return lookup


def run() -> list[Figure]:
    municipality_id, raw = _holder()
    database_url = os.environ["DATABASE_URL"]
    env = server_environment(database_url)
    bearer = {"Authorization": f"Bearer {raw}"}
    paths = {
        "health": ("/api/v1/health", {}),
        "me": ("/api/v1/me", bearer),
        "neighborhoods": ("/api/v1/neighborhoods?limit=10", bearer),
        "empty tile": (EMPTY_TILE, bearer),
    }
    lookup = _raw_lookup(database_url, municipality_id, raw)
    samples: dict[str, list[float]] = {name: [] for name in [*paths, "hello", "lookup"]}
    with gunicorn(PORT, env=env), gunicorn(PORT + 1, app="bench.http_server:hello", env=env):
        for name, (path, headers) in list(paths.items()):
            status, body = get(PORT, path, headers)
            if status != 200:  # reported, not timed: the other rows still mean something
                print(f"  {name}: {path} answered {status}: {body[:200]!r}")
                del paths[name]
        for _ in range(10):  # warm-up: every worker has its connection and its caches
            for path, headers in paths.values():
                get(PORT, path, headers)
            get(PORT + 1, "/")
        for _ in range(ROUNDS):
            for name, (path, headers) in paths.items():
                samples[name].append(_timed(lambda path=path, headers=headers: get(PORT, path, headers)))
            samples["hello"].append(_timed(lambda: get(PORT + 1, "/")))
            samples["lookup"].append(_timed(lookup))
        if PROFILE_SECONDS and "me" in paths:
            profile_request(PORT, *paths["me"])
    ms = {name: statistics.median(values) * 1000 for name, values in samples.items() if values}
    floor = ms["hello"] + ms["lookup"]
    rows = [
        ("me", "HTTP GET /api/v1/me vs raw lookup + hello-world", floor),
        ("health", "HTTP GET /api/v1/health vs hello-world", ms["hello"]),
        ("neighborhoods", "HTTP GET /neighborhoods?limit=10 vs hello-world", ms["hello"]),
        ("empty tile", "HTTP empty neighborhoods tile vs hello-world", ms["hello"]),
    ]
    figures = [Figure(title, ms[name], baseline, unit="ms") for name, title, baseline in rows if name in ms]
    figures.append(Figure("HTTP hello-world (same gunicorn config) / raw lookup (open psycopg)", ms["hello"],
                          ms["lookup"], unit="ms", note=f"medians of {ROUNDS}, one request at a time"))
    return figures


def profile_request(port: int, path: str, headers: dict[str, str]) -> None:
    """py-spy over the server's workers while `path` is requested one at a time; prints the share
    of in-request samples per group of code (GROUPS) and keeps the collapsed stacks."""
    if not PY_SPY.exists() or port not in SERVERS:
        print("  profile: py-spy is not installed (make venv), skipped")
        return
    out = ROOT / ".local" / "bench" / "http-me.pyspy.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            get(port, path, headers)

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    try:
        done = subprocess.run(
            [str(PY_SPY), "record", "--pid", str(SERVERS[port]), "--subprocesses", "--nonblocking", "--rate", "250",
             "--duration", str(PROFILE_SECONDS), "--format", "raw", "--output", str(out)],
            capture_output=True, text=True, check=False,
        )
    finally:
        stop.set()
        loader.join()
    if done.returncode != 0 or not out.exists():
        print(f"  profile: py-spy failed ({done.returncode}): {done.stderr.strip()[:300]}")
        return
    shares = summarise(out)
    total = sum(shares.values())
    print(f"  where GET {path} spends its time in gunicorn (py-spy, {total} samples inside requests; stacks: {out}):")
    for name, n in shares.most_common():
        print(f"    {100 * n / total:5.1f}%  {name}")


def summarise(collapsed: Path) -> collections.Counter:
    """Samples inside a request per group of their innermost frame."""
    shares: collections.Counter = collections.Counter()
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not IN_REQUEST.search(stack):
            continue
        leaf = stack.rsplit(";", 1)[-1]
        name = next(group for group, pattern in GROUPS if pattern.search(leaf))
        shares[name] += int(count)
    return shares

