"""The per-request floor over real HTTP: gunicorn started as `make run` starts it (the same config
file, bench/http_server.py), one request at a time on a new connection each, 200 rounds; in each
round every endpoint once, so the machine's noise falls on all of them alike. Medians.

Baselines in the same run: the token lookup a request needs (bench_auth.HOLDER_LOOKUP_SQL) over an
already open psycopg connection as the application's role in the holder's tenant scope, and a bare
WSGI hello-world served by the same gunicorn config. The aim for `/me`: within 3x of their sum."""

import os
import statistics
import time
from collections.abc import Callable

import psycopg

from bench.bench_auth import HOLDER_LOOKUP_SQL
from bench.common import Figure
from bench.http_server import get, gunicorn, server_environment
from bench.maps_data import synthetic_city

ROUNDS = int(os.environ.get("BENCH_HTTP_ROUNDS", "200"))
PORT = int(os.environ.get("BENCH_HTTP_PORT", "8101"))
# Far from the synthetic city (bench/maps_data.py): a neighborhoods tile with nothing in it.
EMPTY_TILE = "/api/v1/maps/tiles/neighborhoods/13/0/0.mvt"


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
