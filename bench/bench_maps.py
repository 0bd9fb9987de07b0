"""Maps: vector tiles and coverage through the API against the same SQL run directly, in the same
run, at the demo town's scale (63 自治会, 5,500 households) and at 20,000 自治会 / 1,000,000
households. The data is synthetic, made in SQL (bench/maps_data.py).

- tiles, cold: GET /api/v1/maps/tiles/... (Django test client in-process, token auth, no
  If-None-Match, the tile cache emptied before each request) vs maps.tiles.render() of the same
  request (the one ST_AsMVT statement, as the schema owner: no row-level security); the same tiles
  in the same order, alternating, after one warm-up pass (so both see warm database caches), three
  passes, per tile the median, then the mean over the tiles. Also against SQL + the request floor;
- tiles, repeated: the same GET again (served from maps.tile_cache) vs the same SQL;
- tiles, revalidation: the same GET with the ETag of the first answer (304) vs the request floor,
  `GET /api/v1/me` measured right before each 304 (the floor is the auth, middleware and routing
  every request pays; 304 − floor is what the tile's revalidation adds; measured beside each other
  so both see the same load on a shared machine);
- a supervisor's pan: a 6×4 block of z15 households tiles and of z13 自治会 tiles requested one
  after the other, cold (cache emptied), repeated (from the cache) and revalidated (304s), total
  ms vs the 24 statements' SQL;
- coverage: GET /api/v1/maps/coverage (the snapshot read) vs the same read SQL; the snapshot read
  vs the aggregate it replaces (the live GROUP BY over households and campaign states); the
  refresh (aggregate + weekly series + writes) vs that aggregate alone.

`TSUNAGU_BENCH_MAPS=tiles` runs the tile figures only (the coverage ones take minutes at 1M).
"""

import math
import os
import random
import statistics
import time

from django.db import connection
from django.test import Client

from bench.common import Figure, best_of
from bench.maps_data import CELL, LAT0, LON0, synthetic_city

SCALES = (
    ("demo", "999201", 63, 5_500),
    ("1M", "999202", 20_000, 1_000_000),
)
TILES_PER_LAYER = 24
PASSES = 3
LAYERS = (("households", 15, "coordinator"), ("neighborhoods", 13, "coordinator"), ("hexagons", 13, "admin"))


def _tile_xy(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2 ** z
    return int((lon + 180.0) / 360.0 * n), int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)


def _city_tiles(hoods: int, z: int, count: int, seed: int) -> list[tuple[int, int, int]]:
    cols = math.ceil(math.sqrt(hoods * 1.25))
    rows = math.ceil(hoods / cols)
    x0, y1 = _tile_xy(LON0, LAT0, z)
    x1, y0 = _tile_xy(LON0 + cols * CELL, LAT0 + rows * CELL, z)
    every = [(z, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]
    rng = random.Random(seed)
    return every if len(every) <= count else rng.sample(every, count)


def _users(town) -> dict:
    from accounts.models import User
    from accounts.roles import Role
    from accounts.services import create_user, issue_device_token

    out = {}
    for role in ("coordinator", "admin", "supervisor"):
        user = User.objects.filter(municipality=town, role=role).order_by("pk").first()
        if user is None:
            user = create_user(municipality=town, username=f"bench-maps-{role}-{town.code}", role=Role(role), password=None)
        _token, raw = issue_device_token(user=user, device_name="bench")
        out[role] = (user, {"Authorization": f"Bearer {raw}"})
    return out


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _empty_cache() -> None:
    """Forget every cached tile (not timed); the code before the tile cache had none."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('maps_cachedtile') IS NOT NULL")
        if cursor.fetchone()[0]:
            cursor.execute("DELETE FROM maps_cachedtile")


def _floor(client: Client, headers: dict) -> tuple[float, float]:
    """The request floor in-process: GET /api/v1/me (token auth, the smallest answer) and
    GET /api/v1/health (no auth; a database round trip), medians of 60."""
    me = best_of(lambda: client.get("/api/v1/me", headers=headers), repeat=60)
    health = best_of(lambda: client.get("/api/v1/health"), repeat=60)
    return me, health


def _pan_block(city: dict, z: int) -> list[tuple[int, int, int]]:
    """6 x 4 neighbouring tiles in the middle of the city, as the map page asks for them."""
    cols = math.ceil(math.sqrt(city["hoods"] * 1.25))
    rows = math.ceil(city["hoods"] / cols)
    x, y = _tile_xy(LON0 + cols * CELL / 2, LAT0 + rows * CELL / 2, z)
    return [(z, x + dx, y + dy) for dy in range(-2, 2) for dx in range(-3, 3)]


def _tile_figures(label: str, city: dict, users: dict) -> list[Figure]:
    from maps import tiles

    client = Client()
    figures = []
    hit_api, hit_sql, hit_floor = [], [], []
    floor_me, floor_health = _floor(client, users["coordinator"][1])
    me_headers = users["coordinator"][1]
    for layer, z, role in LAYERS:
        user, headers = users[role]
        chosen = _city_tiles(city["hoods"], z, TILES_PER_LAYER, seed=z)
        campaign = city["campaign"].pk if layer in ("neighborhoods", "households") else None

        def request(t, extra=None, layer=layer, headers=headers):
            r = client.get(f"/api/v1/maps/tiles/{layer}/{t[0]}/{t[1]}/{t[2]}.mvt", headers={**headers, **(extra or {})})
            assert r.status_code in (200, 304), r.content[:300]
            return r

        def direct(t, layer=layer, user=user, campaign=campaign):
            return tiles.render(tiles.TileRequest(user=user, layer=layer, z=t[0], x=t[1], y=t[2], campaign=campaign))

        tags = {t: request(t)["ETag"] for t in chosen}  # warm-up pass
        sizes = [len(direct(t)) for t in chosen]
        cold_s, warm_s, sql_s = ({t: [] for t in chosen} for _ in range(3))
        for _ in range(PASSES):
            for t in chosen:
                _empty_cache()
                cold_s[t].append(_timed(lambda t=t: request(t)))
                warm_s[t].append(_timed(lambda t=t: request(t)))
                sql_s[t].append(_timed(lambda t=t: direct(t)))
                hit_floor.append(_timed(lambda: client.get("/api/v1/me", headers=me_headers)))
                hit_api.append(_timed(lambda t=t, tag=tags[t]: request(t, {"If-None-Match": tag})))
                hit_sql.append(sql_s[t][-1])
        # per tile the median of the passes (this machine is shared and noisy), then the mean over tiles
        cold, warm, sql = (statistics.mean(statistics.median(v) for v in d.values()) for d in (cold_s, warm_s, sql_s))
        figures += [
            Figure(f"tile {layer} z{z} cold, API vs same SQL [{label}]", cold, sql,
                   note=f"{len(chosen)} tiles, median {statistics.median(sizes) / 1024:.0f} KiB, max "
                        f"{max(sizes) / 1024:.0f} KiB; vs SQL + floor: {cold / (sql + floor_me):.2f}x"),
            Figure(f"tile {layer} z{z} repeated (cache), API vs same SQL [{label}]", warm, sql),
        ]
    revalidation = statistics.median(hit_api)
    floor_beside = statistics.median(hit_floor)  # measured right before each 304: the same load
    figures += [
        Figure(f"request floor: GET /me, in-process [{label}]", floor_me, floor_health,
               note="baseline: GET /health (no auth)"),
        Figure(f"tile ETag hit (304), API vs same SQL [{label}]", revalidation, statistics.median(hit_sql),
               note="all three layers; <1 means a revalidation costs less than making the tile"),
        Figure(f"tile ETag hit (304) vs the floor (GET /me) [{label}]", revalidation, floor_beside,
               note=f"304 - floor = {(revalidation - floor_beside) * 1000:.2f} ms (GET /me before each 304)"),
    ]
    figures += _pan_figures(label, city, users, client)
    return figures


def _pan_figures(label: str, city: dict, users: dict, client: Client) -> list[Figure]:
    """A supervisor's pan: 24 tiles in a block, cold, repeated and revalidated; totals."""
    from maps import tiles

    user, headers = users["supervisor"]
    figures = []
    for layer, z in (("households", 15), ("neighborhoods", 13)):
        block = _pan_block(city, z)

        def pan(extra_for=None, layer=layer, block=block):
            out = {}
            for t in block:
                extra = extra_for(t) if extra_for else {}
                r = client.get(f"/api/v1/maps/tiles/{layer}/{t[0]}/{t[1]}/{t[2]}.mvt", headers={**headers, **extra})
                assert r.status_code in (200, 304), r.content[:300]
                out[t] = r["ETag"]
            return out

        def sql_pan(layer=layer, block=block):
            for t in block:
                tiles.render(tiles.TileRequest(user=user, layer=layer, z=t[0], x=t[1], y=t[2],
                                               campaign=city["campaign"].pk))

        tags = pan()  # warm-up (database caches)
        cold, warm, revalidated, sql = [], [], [], []
        for _ in range(PASSES):
            _empty_cache()
            cold.append(_timed(pan))
            warm.append(_timed(pan))
            revalidated.append(_timed(lambda tags=tags, pan=pan: pan(lambda t: {"If-None-Match": tags[t]})))
            sql.append(_timed(sql_pan))
        base = statistics.median(sql)
        name = f"supervisor's pan, 24 {layer} z{z} tiles"
        figures += [
            Figure(f"{name}, cold, API total vs SQL [{label}]", statistics.median(cold), base),
            Figure(f"{name}, repeated (cache), API total vs SQL [{label}]", statistics.median(warm), base),
            Figure(f"{name}, revalidated (304), API total vs SQL [{label}]", statistics.median(revalidated), base),
        ]
    return figures


def _coverage_figures(label: str, city: dict, users: dict) -> list[Figure]:
    from maps import queries
    from maps.services import refresh_coverage
    from visits import coverage

    campaign = city["campaign"]
    refresh_s = _timed(lambda: refresh_coverage(campaign.pk))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE maps_coveragecell; ANALYZE maps_coverageweek")
    client = Client()
    _user, headers = users["coordinator"]
    url = f"/api/v1/maps/coverage?campaign={campaign.pk}&limit=500"
    weekly_url = f"/api/v1/maps/coverage/weekly?campaign={campaign.pk}"
    assert client.get(url, headers=headers).json()["count"] == city["hoods"]

    sql, params = queries.coverage_read_sql("neighborhood", queries.CoverageFilter())
    params.update({"municipality": campaign.municipality_id, "campaigns": [campaign.pk], "limit": 500, "offset": 0})
    agg_params = coverage.aggregate_params(campaign_id=campaign.pk, municipality_id=campaign.municipality_id)

    def run_sql(statement, args):
        with connection.cursor() as cursor:
            cursor.execute(statement, args)
            cursor.fetchall()

    repeat = 9 if label == "demo" else 5
    api = best_of(lambda: client.get(url, headers=headers), repeat=repeat)
    raw = best_of(lambda: run_sql(sql, params), repeat=repeat)
    live = best_of(lambda: run_sql(coverage.CELLS_SQL, agg_params), repeat=3)
    weekly_api = best_of(lambda: client.get(weekly_url, headers=headers), repeat=repeat)
    weekly_sql_text = queries.WEEKLY_SQL.format(week_filters="", cell_filters="")
    weekly_params = {"campaign": campaign.pk, "start": campaign.start_date, "end": campaign.end_date,
                     "today": campaign.end_date}
    weekly_raw = best_of(lambda: run_sql(weekly_sql_text, weekly_params), repeat=repeat)
    n = f"{city['hoods']:,} 自治会 / {city['households']:,} households"
    return [
        Figure(f"coverage per 自治会, API vs same read SQL [{label}]", api, raw, note=f"{n}, 500 per page"),
        Figure(f"coverage per 自治会, API (snapshot) vs live aggregate [{label}]", api, live,
               note="the GROUP BY the snapshot saves each read"),
        Figure(f"coverage weekly series, API vs same SQL [{label}]", weekly_api, weekly_raw),
        Figure(f"coverage refresh (task) vs live aggregate alone [{label}]", refresh_s, live,
               note="aggregate + weekly series + writes, in the background"),
    ]


def run() -> list[Figure]:
    figures = []
    for label, code, hoods, households in SCALES:
        started = time.perf_counter()
        city = synthetic_city(code=code, hoods=hoods, households=households)
        made = time.perf_counter() - started
        print(f"  [{label}] {city['hoods']:,} 自治会, {city['households']:,} households ready in {made:.0f}s")
        users = _users(city["municipality"])
        if os.environ.get("TSUNAGU_BENCH_MAPS") != "tiles":
            figures += _coverage_figures(label, city, users)
        figures += _tile_figures(label, city, users)
    return figures
