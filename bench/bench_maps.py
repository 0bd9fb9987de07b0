"""Maps: vector tiles and coverage through the API against the same SQL run directly, in the same
run, at the demo town's scale (63 自治会, 5,500 households) and at 20,000 自治会 / 1,000,000
households. The data is synthetic, made in SQL (bench/maps_data.py).

- tiles, cold: GET /api/v1/maps/tiles/... (Django test client in-process, token auth, no
  If-None-Match) vs maps.tiles.render() of the same request (the one ST_AsMVT statement); the
  same tiles in the same order, alternating, after one warm-up pass (so both see warm caches),
  three passes, per tile the median, then the mean over the tiles;
- tiles, ETag hit: the same GET with the ETag of the first answer (304) vs the same SQL;
- coverage: GET /api/v1/maps/coverage (the snapshot read) vs the same read SQL; the snapshot read
  vs the aggregate it replaces (the live GROUP BY over households and campaign states); the
  refresh (aggregate + weekly series + writes) vs that aggregate alone.
"""

import math
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
    for role in ("coordinator", "admin"):
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


def _tile_figures(label: str, city: dict, users: dict) -> list[Figure]:
    from maps import tiles

    client = Client()
    figures = []
    hit_api, hit_sql = [], []
    for layer, z, role in LAYERS:
        user, headers = users[role]
        chosen = _city_tiles(city["hoods"], z, TILES_PER_LAYER, seed=z)
        campaign = city["campaign"] if layer in ("neighborhoods", "households") else None

        def request(t, extra=None, layer=layer, headers=headers):
            r = client.get(f"/api/v1/maps/tiles/{layer}/{t[0]}/{t[1]}/{t[2]}.mvt", headers={**headers, **(extra or {})})
            assert r.status_code in (200, 304), r.content[:300]
            return r

        def direct(t, layer=layer, user=user, campaign=campaign):
            return tiles.render(tiles.TileRequest(user=user, layer=layer, z=t[0], x=t[1], y=t[2], campaign=campaign))

        tags = {t: request(t)["ETag"] for t in chosen}  # warm-up pass
        sizes = [len(direct(t)) for t in chosen]
        api_s, sql_s = {t: [] for t in chosen}, {t: [] for t in chosen}
        for _ in range(PASSES):
            for t in chosen:
                api_s[t].append(_timed(lambda t=t: request(t)))
                sql_s[t].append(_timed(lambda t=t: direct(t)))
                hit_api.append(_timed(lambda t=t, tag=tags[t]: request(t, {"If-None-Match": tag})))
                hit_sql.append(sql_s[t][-1])
        # per tile the median of the passes (this machine is shared and noisy), then the mean over tiles
        api_s = [statistics.median(v) for v in api_s.values()]
        sql_s = [statistics.median(v) for v in sql_s.values()]
        figures.append(Figure(
            f"tile {layer} z{z} cold, API vs same SQL [{label}]", statistics.mean(api_s), statistics.mean(sql_s),
            note=f"{len(chosen)} tiles, median {statistics.median(sizes) / 1024:.0f} KiB, max {max(sizes) / 1024:.0f} KiB",
        ))
    figures.append(Figure(
        f"tile ETag hit (304), API vs same SQL [{label}]", statistics.median(hit_api), statistics.median(hit_sql),
        note="all three layers; <1 means a revalidation costs less than making the tile",
    ))
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
    agg_params = coverage.aggregate_params(
        campaign_id=campaign.pk, municipality_id=campaign.municipality_id, start_date=campaign.start_date
    )

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
        figures += _coverage_figures(label, city, users)
        figures += _tile_figures(label, city, users)
    return figures
