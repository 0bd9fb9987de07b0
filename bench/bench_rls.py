"""Row-level security's cost (backend/tenancy.py, rls/): the household list, a households vector
tile and a sync pull through the API (Django test client in-process, token auth), with the
policies on (as installed) against off, in the same run.

Off is `ALTER TABLE … DISABLE ROW LEVEL SECURITY` on every table that has it (pg_class.
relrowsecurity), as the schema owner, in the bench database only; the same tables are enabled
again in a `finally`. Requests still act as the application's role in the caller's scope (SET ROLE,
the tenant setting): only the policies differ. On and off alternate, ROUNDS times each, the first
side changing every round; each round times every request REPEAT times (the median) after one
warm-up pass; a figure is the median of the rounds' medians (the note gives the range of the
rounds' own ratios), so machine noise hits both sides alike.

Data (bench/maps_data.py): two municipalities of 200 自治会 and 50,000 households each, on the
same ground (their tiles overlap: the policies, or the queries' own municipality condition, have
the other half to filter out), each with a running campaign, and a worker with 1,500 visits
scheduled from a week back to four weeks ahead (1,500 visits + their 1,500 households to pull).

- households list: GET /api/v1/households?limit=100 as a coordinator (the count and one page);
- tile: GET /api/v1/maps/tiles/households/15/x/y.mvt, cold (no If-None-Match; tiles are not
  cached on the server), two z15 tiles at the city's centre;
- sync pull, initial: GET /api/v1/sync/pull with an empty cursor, limit 500, from a device that
  holds nothing (the visible set of 3,000 rows is computed, one page of 500 is sent);
- sync pull, empty: a tablet in steady state (holding all 3,000 rows) asking with the cursor of
  its last, empty page: nothing to send;
- sync pull, all pages: a device syncing from scratch, page after page with each page confirmed
  (seconds; FULL_PULL_ROUNDS rounds only);
- and, to tell the database's share from Python's, the household list's own SQL (captured from the
  API: the count and the page) and the tiles' one statement, as the application's role in scope.
"""

import datetime as dt
import math
import statistics
import time
import uuid
from collections.abc import Callable

from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from bench.common import Figure, best_of
from bench.maps_data import CELL, LAT0, LON0, synthetic_city

CODES = ("999301", "999302")
HOODS, HOUSEHOLDS = 200, 50_000
VISITS = 1_500
ROUNDS = 6
FULL_PULL_ROUNDS = 2
REPEAT = 7
SQL_REPEAT = 25
TILE_Z = 15
PULL_LIMIT = 500


def _tile_xy(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    return int((lon + 180.0) / 360.0 * n), int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)


def _centre_tiles() -> list[tuple[int, int, int]]:
    cols = math.ceil(math.sqrt(HOODS * 1.25))
    rows = math.ceil(HOODS / cols)
    x, y = _tile_xy(LON0 + cols * CELL / 2, LAT0 + rows * CELL / 2, TILE_Z)
    return [(TILE_Z, x + dx, y) for dx in (-1, 0)]


# The tables bench/maps_data.py loads. It switches their triggers off with `SET LOCAL
# session_replication_role = replica`, which needs a superuser, and the schema owner is none (as in
# production: scripts/pg.sh). As the tables' owner we switch off their user triggers instead (the
# append-only guard, history and change_seq triggers: the same ones), in a transaction around the
# builder, and skip its SET; foreign keys are checked (replica mode skipped that too).
_LOADED = (
    "neighborhoods_district", "neighborhoods_dailylifearea", "neighborhoods_neighborhood",
    "neighborhoods_household", "neighborhoods_communityresource", "visits_campaignneighborhood",
    "visits_allocation", "visits_campaignhousehold", "visits_visitrecord", "outreach_concern",
    "outreach_outreachcase",
)
_REPLICA = "SET LOCAL session_replication_role = replica"


def _skip_replica(execute, sql, params, many, context):
    if sql == _REPLICA:
        return None
    return execute(sql, params, many, context)


def _city(code: str) -> dict:
    from neighborhoods.models import Municipality

    if Municipality.objects.filter(code=code).exists():  # built before (--keep-db)
        return synthetic_city(code=code, hoods=HOODS, households=HOUSEHOLDS)
    quoted = [connection.ops.quote_name(t) for t in _LOADED]
    with transaction.atomic(), connection.execute_wrapper(_skip_replica):
        with connection.cursor() as cur:
            for table in quoted:
                cur.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        city = synthetic_city(code=code, hoods=HOODS, households=HOUSEHOLDS)
        with connection.cursor() as cur:
            cur.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the deferred foreign key checks, now
            for table in quoted:
                cur.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
    return city


def _schedule(town, campaign, worker) -> int:
    """The worker's visits: VISITS households of their corporation's 自治会, spread over the sync
    window (a week back to four weeks ahead of today). Replaced on every run (--keep-db)."""
    from django.utils import timezone

    today = timezone.localdate()
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("DELETE FROM visits_scheduledvisit WHERE worker_id = %s", [worker.pk])
        cur.execute(
            """
            INSERT INTO visits_scheduledvisit
                   (id, municipality_id, campaign_id, household_id, neighborhood_id, partner_organization_id,
                    worker_id, date, time_band, route_order, attempt, priority, status, leg_m, version,
                    change_seq, created_at, updated_at)
            SELECT gen_random_uuid(), %(m)s, %(c)s, h.id, h.neighborhood_id, %(p)s, %(w)s,
                   %(start)s::date + ((h.rn - 1) %% 36)::int, CASE WHEN h.rn %% 2 = 0 THEN 'am' ELSE 'pm' END,
                   (h.rn - 1) / 36 + 1, 1, false, 'planned', 0, 1, 0, now(), now()
              FROM (SELECT h.id, h.neighborhood_id, row_number() OVER (ORDER BY h.external_id) AS rn
                      FROM neighborhoods_household h
                      JOIN visits_allocation a ON a.neighborhood_id = h.neighborhood_id
                       AND a.campaign_id = %(c)s AND a.partner_organization_id = %(p)s
                     WHERE h.municipality_id = %(m)s AND h.status = 'occupied') h
             WHERE h.rn <= %(n)s
            """,
            {"m": town.pk, "c": campaign.pk, "p": worker.partner_organization_id, "w": worker.pk,
             "start": today - dt.timedelta(days=7), "n": VISITS},
        )
        made = cur.rowcount
        cur.execute("ANALYZE visits_scheduledvisit")
    return made


def _setup() -> dict:
    from accounts.models import User
    from accounts.services import issue_device_token

    started = time.perf_counter()
    towns = []
    for code in CODES:
        city = _city(code)
        worker = User.objects.get(username=f"bench-maps-worker-{code}")
        coordinator = User.objects.get(username=f"bench-maps-coord-{code}")
        visits = _schedule(city["municipality"], city["campaign"], worker)
        towns.append({**city, "worker": worker, "coordinator": coordinator, "visits": visits})
    print(f"  {len(towns)} municipalities of {towns[0]['households']:,} households, "
          f"{towns[0]['visits']:,} visits for the worker, ready in {time.perf_counter() - started:.0f}s")
    town = towns[0]
    for role in ("coordinator", "worker"):
        _token, raw = issue_device_token(user=town[role], device_name="bench-rls")
        town[f"{role}_headers"] = {"Authorization": f"Bearer {raw}"}
    return town


# --- row-level security on and off ------------------------------------------------------------


def _rls_tables() -> list[str]:
    with connection.cursor() as cur:
        cur.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relrowsecurity ORDER BY 1"
        )
        return [row[0] for row in cur.fetchall()]


def _set_rls(tables: list[str], on: bool) -> None:
    """As the schema owner (outside any tenant scope), all tables in one transaction."""
    action = "ENABLE" if on else "DISABLE"
    with transaction.atomic(), connection.cursor() as cur:
        for table in tables:
            cur.execute(f"ALTER TABLE {connection.ops.quote_name(table)} {action} ROW LEVEL SECURITY")


def _visible_households(municipality_id: int | None = None) -> int:
    """All households the application's role sees in this municipality's scope, with no condition
    of its own (None: all households, as the owner)."""
    from backend import tenancy

    if municipality_id is None:
        with connection.cursor() as cur:
            cur.execute("SELECT count(*) FROM neighborhoods_household")
            return cur.fetchone()[0]
    with tenancy.scope(municipality_id), connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM neighborhoods_household")
        return cur.fetchone()[0]


# --- what is timed -------------------------------------------------------------------------------


def _requests(town: dict) -> tuple[dict[str, Callable[[], object]], Callable[[], object]]:
    """The timed API requests, and the full initial pull (timed separately: seconds, not ms)."""
    client = Client()
    coordinator, worker = town["coordinator_headers"], town["worker_headers"]

    def get(url: str, headers: dict, **query) -> dict | bytes:
        r = client.get(url, query, headers=headers)
        assert r.status_code == 200, (url, r.status_code, r.content[:300])
        return r.content if url.endswith(".mvt") else r.json()

    def register() -> str:
        device_id = str(uuid.uuid4())
        r = client.post("/api/v1/sync/devices", {"device_id": device_id, "name": "bench-rls"},
                        content_type="application/json", headers=worker)
        assert r.status_code == 201, r.content[:300]
        return device_id

    def pull(device_id: str, cursor: str) -> dict:
        page = get("/api/v1/sync/pull", worker, device_id=device_id, cursor=cursor, limit=PULL_LIMIT)
        assert isinstance(page, dict)
        return page

    def full_pull(device_id: str) -> str:
        """From an empty cursor, page after page (each cursor confirms the page before), until
        nothing is left; returns the cursor of the last, empty page."""
        cursor, pages, rows = "", 0, 0
        while True:
            page = pull(device_id, cursor)
            pages, rows, cursor = pages + 1, rows + len(page["changes"]), page["next_cursor"]
            if not page["has_more"]:
                break
        page = pull(device_id, cursor)  # confirms the last page: nothing left
        assert page["changes"] == [] and not page["has_more"], page
        town["pull_rows"], town["pull_pages"] = rows, pages
        return page["next_cursor"]

    # A device that holds nothing (it pulls from an empty cursor), one that holds everything (it
    # asks with the cursor of its last, empty page), one that syncs from scratch again and again.
    fresh, steady, again = register(), register(), register()
    empty_cursor = full_pull(steady)
    rows = town["pull_rows"]

    def initial() -> None:
        page = pull(fresh, "")
        assert len(page["changes"]) == min(PULL_LIMIT, rows), len(page["changes"])

    def empty() -> None:
        page = pull(steady, empty_cursor)
        assert page["changes"] == [] and page["purge"] == [], page

    tiles = _centre_tiles()

    def tile() -> None:
        for z, x, y in tiles:
            get(f"/api/v1/maps/tiles/households/{z}/{x}/{y}.mvt", coordinator)

    def households() -> None:
        page = get("/api/v1/households", coordinator, limit=100)
        assert isinstance(page, dict) and page["count"] == town["households"] and len(page["items"]) == 100

    timed: dict[str, Callable[[], object]] = {
        "list": households, "tile": tile, "pull_initial": initial, "pull_empty": empty,
    }
    return timed, lambda: full_pull(again)


def _list_sql(town: dict, households: Callable[[], object]) -> Callable[[], None]:
    """The household list's statements as the API sends them (captured), run as the application's
    role in the coordinator's scope."""
    from backend import tenancy

    with CaptureQueriesContext(connection) as captured:
        households()
    statements = [q["sql"] for q in captured.captured_queries if '"neighborhoods_household"' in q["sql"]]
    assert len(statements) == 2, statements  # the count and the page
    town["list_queries"] = len(captured.captured_queries)
    municipality_id = town["municipality"].pk

    def run() -> None:
        with tenancy.scope(municipality_id), connection.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
                cur.fetchall()

    return run


def _tile_sql(town: dict) -> Callable[[], None]:
    """The tiles' one statement each (maps.tiles.render_with_etag, as the API makes them), as the
    application's role in the coordinator's scope."""
    from django.utils import timezone

    from backend import tenancy
    from maps import access, tiles

    user, municipality_id = town["coordinator"], town["municipality"].pk
    with tenancy.scope(municipality_id):
        campaign = access.campaign_for(user, None)
    requests = [
        tiles.TileRequest(user=user, layer="households", z=z, x=x, y=y, campaign=campaign.pk if campaign else None,
                          today=timezone.localdate())
        for z, x, y in _centre_tiles()
    ]

    def run() -> None:
        with tenancy.scope(municipality_id):
            for req in requests:
                tiles.render_with_etag(req)

    return run


def _tile_households(town: dict) -> list[int]:
    counts = []
    with connection.cursor() as cur:
        for z, x, y in _centre_tiles():
            cur.execute(
                "SELECT count(*) FROM neighborhoods_household"
                " WHERE municipality_id = %s AND location && ST_Transform(ST_TileEnvelope(%s, %s, %s), 4326)",
                [town["municipality"].pk, z, x, y],
            )
            counts.append(cur.fetchone()[0])
    return counts


def run() -> list[Figure]:
    if not connection.settings_dict["NAME"].startswith("tsunagu_bench"):
        raise RuntimeError("bench_rls switches row-level security off: only in a bench database")
    town = _setup()
    timed, full_pull = _requests(town)
    timed["list_sql"] = _list_sql(town, timed["list"])
    timed["tile_sql"] = _tile_sql(town)
    repeats = {name: SQL_REPEAT if name == "list_sql" else REPEAT for name in timed}

    tables = _rls_tables()
    assert tables, "no table has row-level security: were the policies installed (rls.schema)?"
    results: dict[bool, dict[str, list[float]]] = {side: {name: [] for name in timed} for side in (True, False)}
    full: dict[bool, list[float]] = {True: [], False: []}
    seen: dict[bool, int] = {}
    started = time.perf_counter()
    try:
        for r in range(ROUNDS):
            for on in (True, False) if r % 2 == 0 else (False, True):
                _set_rls(tables, on)
                seen[on] = _visible_households(town["municipality"].pk)
                for fn in timed.values():  # warm-up: plans and caches after the ALTERs
                    fn()
                for name, fn in timed.items():
                    results[on][name].append(best_of(fn, repeat=repeats[name]))
                if r < FULL_PULL_ROUNDS:
                    full[on].append(best_of(full_pull, repeat=1))
    finally:
        _set_rls(tables, True)
    assert _rls_tables() == tables, "row-level security was not restored as found"
    total = _visible_households()
    # The toggle did what it says: off, the role sees every municipality's households.
    assert seen == {True: town["households"], False: total}, seen
    print(f"  {ROUNDS} rounds on/off over {len(tables)} tables in {time.perf_counter() - started:.0f}s")

    def fig(name: str, on_s: list[float], off_s: list[float], note: str, *, per: int = 1, unit: str = "ms") -> Figure:
        scale = 1000 / per if unit == "ms" else 1.0
        ratios = sorted(a / b for a, b in zip(on_s, off_s, strict=True))
        spread = f"rounds {ratios[0]:.2f}-{ratios[-1]:.2f}x" if len(ratios) > 1 else ""
        return Figure(name, statistics.median(on_s) * scale, statistics.median(off_s) * scale, unit=unit,
                      note="; ".join(x for x in (note, spread) if x))

    def timed_fig(name: str, key: str, note: str, per: int = 1) -> Figure:
        return fig(name, results[True][key], results[False][key], note, per=per)

    sizes = _tile_households(town)
    tile_note = f"per tile, {len(sizes)} tiles of {min(sizes):,}-{max(sizes):,} own households (as many of the other)"
    return [
        timed_fig("households list (API), RLS on vs off", "list",
                  f"GET /households?limit=100, coordinator: {town['households']:,} of {total:,} households; "
                  f"{town['list_queries']} queries"),
        timed_fig("households list SQL (count + page), RLS on vs off", "list_sql",
                  "the API's 2 statements, as the app role in scope"),
        timed_fig("households tile z15 cold (API), RLS on vs off", "tile", tile_note, per=len(sizes)),
        timed_fig("households tile z15 SQL, RLS on vs off", "tile_sql",
                  "the API's one statement per tile, as the app role in scope", per=len(sizes)),
        timed_fig("sync pull initial, 1st page (API), RLS on vs off", "pull_initial",
                  f"worker: {town['pull_rows']:,} rows visible, {PULL_LIMIT} sent"),
        timed_fig("sync pull empty incremental (API), RLS on vs off", "pull_empty",
                  f"worker's device holding {town['pull_rows']:,} rows, nothing new"),
        fig("sync pull initial, all pages (API), RLS on vs off", full[True], full[False],
            f"{town['pull_pages']} pages of {PULL_LIMIT} + confirms, {FULL_PULL_ROUNDS} rounds", unit="s"),
    ]
