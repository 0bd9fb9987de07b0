"""Schedule generation (visits.planning.plan_partner) on the demo town and on a synthetic city of
60,000 households. Pure computation: no database.

Demo town inputs, from the real demo files:
- stops: the demo town's households where fixtures/generate.py puts them (the town's own list has
  addresses only), status vacant/moved skipped, by 自治会; 自治会 order = code order (HK01..HK63);
  3 seeded priority households per 自治会;
- corporations: the generator's 5 corporations (office, 3 workers each);
- allocation: the 63 codes cut into 5 contiguous blocks of the code order with about equal numbers
  of households; each block goes to a corporation so that the sum of office-to-block-centroid
  distances is smallest (over all 5! assignments);
- capacity 12, bands am/pm, dates: weekdays of Dec 2026 – Mar 2027 minus Japanese public holidays.

Reference schedule (a different method): OR-Tools CVRP over all stops of one corporation at once
(depot = office, capacity 12, ceil(n/12) + 2 vehicles, path cheapest arc + guided local search for
REFERENCE_SECONDS per corporation). It ignores 自治会 order and priorities, which ours respects.
"""

import datetime as dt
import functools
import importlib.util
import itertools
import math
import random
import time
from pathlib import Path
from types import ModuleType

import holidays
import numpy as np
from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from bench.common import Figure
from visits.distances import haversine_m, matrix_m
from visits.planning import PartnerPlan, PartnerPlanRequest, Stop, WorkerDays, plan_partner

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures" / "hokuei"
CAPACITY = 12
REFERENCE_SECONDS = 20
SKIPPED = {"vacant", "moved"}
def _working_days(start: dt.date, end: dt.date) -> tuple[dt.date, ...]:
    jp = holidays.Japan(years=range(start.year, end.year + 1))
    out = []
    d = start
    while d <= end:
        if d.isoweekday() <= 5 and d not in jp:
            out.append(d)
        d += dt.timedelta(days=1)
    return tuple(out)


def _generator() -> ModuleType:
    """fixtures/generate.py (a script, not a package): the demo town as it generates it."""
    spec = importlib.util.spec_from_file_location("tsunagu_fixtures", FIXTURES.parent / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.cache
def _demo_town() -> tuple[list[dict], list[dict]]:
    """(households, corporations) of the demo town (the corporations' offices are placed near the
    settlements build_households lays out, so both come from one run over the same 自治会)."""
    generator = _generator()
    neighborhoods = generator.build_hokuei()[1]
    households, _residents = generator.build_households(neighborhoods)
    return households, generator.build_partners(neighborhoods)


def demo_households() -> dict[str, list[dict]]:
    """The demo town's households to visit, by 自治会 code."""
    households, _partners = _demo_town()
    rows = [r for r in households if r["status"] not in SKIPPED]
    by_code: dict[str, list[dict]] = {}
    for r in rows:
        by_code.setdefault(r["neighborhood_code"], []).append(r)
    return by_code


def demo_requests(seed: int = 2026) -> list[PartnerPlanRequest]:
    _households, partners = _demo_town()
    by_code = demo_households()
    rows = [r for code in sorted(by_code) for r in by_code[code]]
    codes = sorted(by_code)
    # Contiguous blocks of the code order, about equal households each.
    blocks: list[list[str]] = [[] for _ in partners]
    total, acc, b = len(rows), 0, 0
    for code in codes:
        if acc >= total * (b + 1) / len(blocks) and b < len(blocks) - 1:
            b += 1
        blocks[b].append(code)
        acc += len(by_code[code])

    def centroid(block: list[str]) -> tuple[float, float]:
        pts = [(float(r["lon"]), float(r["lat"])) for c in block for r in by_code[c]]
        return sum(p[0] for p in pts) / len(pts), sum(p[1] for p in pts) / len(pts)

    centres = [centroid(bl) for bl in blocks]
    offices = [(p["office"]["lon"], p["office"]["lat"]) for p in partners]
    best = min(
        itertools.permutations(range(len(partners))),
        key=lambda perm: sum(haversine_m(*offices[perm[i]], *centres[i]) for i in range(len(blocks))),
    )
    dates = _working_days(dt.date(2026, 12, 1), dt.date(2027, 3, 31))
    rng = random.Random(seed)
    requests = []
    worker_id = 0
    for i, block in enumerate(blocks):
        stops = []
        for code in block:
            households = by_code[code]
            priority = set(rng.sample(range(len(households)), min(3, len(households))))
            stops.extend(
                Stop(id=h["external_id"], lon=float(h["lon"]), lat=float(h["lat"]), group=codes.index(code) + 1,
                     priority=j in priority)
                for j, h in enumerate(households)
            )
        workers = []
        for _ in partners[best[i]]["workers"]:
            worker_id += 1
            workers.append(WorkerDays(worker_id=worker_id, dates=dates))
        requests.append(PartnerPlanRequest(office=offices[best[i]], stops=tuple(stops), workers=tuple(workers),
                                           capacity=CAPACITY))
    return requests


def city_requests(template: list[int], households: int = 60_000, seed: int = 60_000) -> list[PartnerPlanRequest]:
    """A synthetic city the size of Okinawa City: 700 自治会 (clusters on a jittered grid of centres
    over 15 x 12 km, sizes drawn from the demo town's 自治会 sizes `template` and scaled to
    `households` in all, so that only the size of the problem changes), 12 corporations each serving
    a 4 x 3 tile of the city with an office inside it, 3–5 workers, FY2027 working days."""
    rng = random.Random(seed)
    lat0, lon0 = 26.30, 127.76
    m_lat = 111_320.0
    m_lon = m_lat * math.cos(math.radians(lat0))
    cols, rows_ = 28, 25
    centres = [((c + 0.5 + rng.uniform(-0.3, 0.3)) * 15_000 / cols, (r + 0.5 + rng.uniform(-0.3, 0.3)) * 12_000 / rows_)
               for r in range(rows_) for c in range(cols)]
    weights = [rng.choice(template) for _ in centres]
    scale = households / sum(weights)
    sizes = [max(1, round(w * scale)) for w in weights]
    sizes[-1] += households - sum(sizes)
    tiles: dict[int, list[int]] = {}
    for idx, (x, y) in enumerate(centres):
        tiles.setdefault(min(3, int(x / 3_750)) + 4 * min(2, int(y / 4_000)), []).append(idx)
    dates = _working_days(dt.date(2027, 4, 1), dt.date(2028, 3, 31))
    requests = []
    worker_id = 0
    hid = 0
    for tile in sorted(tiles):
        # 自治会 order: a serpentine sweep of the tile.
        members = sorted(tiles[tile], key=lambda i: (int(centres[i][1] / 480), centres[i][0]
                                                       * (1 if int(centres[i][1] / 480) % 2 == 0 else -1)))
        stops = []
        for pos, i in enumerate(members):
            cx, cy = centres[i]
            priority = set(rng.sample(range(sizes[i]), min(3, sizes[i])))
            for j in range(sizes[i]):
                hid += 1
                x = cx + rng.gauss(0, 160)
                y = cy + rng.gauss(0, 160)
                stops.append(Stop(id=f"C{hid:06d}", lon=lon0 + x / m_lon, lat=lat0 + y / m_lat, group=pos + 1,
                                  priority=j in priority))
        tx, ty = (tile % 4 + 0.5) * 3_750, (tile // 4 + 0.5) * 4_000
        ox, oy = tx + rng.uniform(-1_000, 1_000), ty + rng.uniform(-1_000, 1_000)
        workers = []
        for _ in range(rng.randint(3, 5)):
            worker_id += 1
            workers.append(WorkerDays(worker_id=worker_id, dates=dates))
        requests.append(PartnerPlanRequest(office=(lon0 + ox / m_lon, lat0 + oy / m_lat), stops=tuple(stops),
                                           workers=tuple(workers), capacity=CAPACITY))
    return requests


def _reference(request: PartnerPlanRequest, seconds: int) -> tuple[int, int, float]:
    """(metres, routes used, CPU seconds to the first solution incl. the matrix) of the whole-campaign CVRP."""
    started = time.process_time()
    n = len(request.stops)
    dist = matrix_m(np.array([request.office[0]] + [s.lon for s in request.stops]),
                   np.array([request.office[1]] + [s.lat for s in request.stops]))
    vehicles = math.ceil(n / request.capacity) + 2

    def model() -> tuple[pywrapcp.RoutingModel, object]:
        manager = pywrapcp.RoutingIndexManager(n + 1, vehicles, 0)
        routing = pywrapcp.RoutingModel(manager)
        transit = routing.RegisterTransitMatrix(dist.tolist())
        routing.SetArcCostEvaluatorOfAllVehicles(transit)
        demand = routing.RegisterUnaryTransitVector([0] + [1] * n)
        routing.AddDimensionWithVehicleCapacity(demand, 0, [request.capacity] * vehicles, True, "load")
        params = pywrapcp.DefaultRoutingSearchParameters()
        params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC
        return routing, params

    routing, params = model()
    params.solution_limit = 1
    routing.SolveWithParameters(params)
    first_s = time.process_time() - started

    routing, params = model()
    params.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    params.time_limit.FromSeconds(seconds)
    solution = routing.SolveWithParameters(params)
    used = sum(1 for v in range(vehicles) if not routing.IsEnd(solution.Value(routing.NextVar(routing.Start(v)))))
    return solution.ObjectiveValue(), used, first_s


def _check(request: PartnerPlanRequest, plan: PartnerPlan) -> None:
    planned = [v.stop_id for v in plan.visits] + plan.unplaced
    assert sorted(planned) == sorted(s.id for s in request.stops), "every stop planned once"


def _worst_day(request: PartnerPlanRequest, plan: PartnerPlan) -> tuple[int, int]:
    days: dict[tuple[int, dt.date], list] = {}
    for v in plan.visits:
        days.setdefault((v.worker_id, v.date), []).append(v)
    where = {s.id: (s.lon, s.lat) for s in request.stops}
    worst = (0, 0)
    for visits in days.values():
        last = max(visits, key=lambda v: v.order)
        length = sum(v.leg_m for v in visits) + round(haversine_m(*where[last.stop_id], *request.office))
        worst = max(worst, (length, len(visits)))
    return worst


def run() -> list[Figure]:
    demo = demo_requests()
    n_demo = sum(len(r.stops) for r in demo)
    city = city_requests([len(v) for v in demo_households().values()])
    n_city = sum(len(r.stops) for r in city)

    # Timing: the demo town is planned four times, once before the city and once after every third
    # of it, so that the demo's time (median of the four) and the city's are taken under the same
    # machine load; CPU time of this (single-threaded) process, the wall clock is noted.
    demo_runs: list[tuple[float, float]] = []
    totals = set()

    def time_demo() -> list[PartnerPlan]:
        started, wall = time.process_time(), time.perf_counter()
        plans = [plan_partner(r) for r in demo]
        demo_runs.append((time.process_time() - started, time.perf_counter() - wall))
        totals.add(tuple(p.total_m for p in plans))
        return plans

    plans = time_demo()
    city_plans = []
    city_s = city_wall = 0.0
    for i, r in enumerate(city):
        started, wall = time.process_time(), time.perf_counter()
        city_plans.append(plan_partner(r))
        city_s += time.process_time() - started
        city_wall += time.perf_counter() - wall
        if (i + 1) % math.ceil(len(city) / 3) == 0 or i == len(city) - 1:
            time_demo()
    assert len(totals) == 1, "the same request gives the same plan"
    demo_s, demo_wall = sorted(demo_runs)[len(demo_runs) // 2]
    for r, p in zip(demo, plans, strict=True):
        _check(r, p)
    for r, p in zip(city, city_plans, strict=True):
        _check(r, p)
    biggest = max(len(r.stops) for r in city)
    ours_m = sum(p.total_m for p in plans)
    days = sum(p.worker_days for p in plans)
    worst = max(_worst_day(r, p) for r, p in zip(demo, plans, strict=True))

    ref_m = ref_days = 0
    first_s = 0.0
    for r in demo:
        metres, used, first = _reference(r, REFERENCE_SECONDS)
        ref_m += metres
        ref_days += used
        first_s += first

    return [
        Figure(
            "planning: demo town total distance vs reference VRP", ours_m / 1000, ref_m / 1000, unit="km",
            note=(f"{n_demo} stops, 5 corporations, {days} worker-days (reference {ref_days}); reference = "
                  f"OR-Tools CVRP per corporation, GLS {REFERENCE_SECONDS}s, ignores 自治会 order and priorities; "
                  f"worst worker-day {worst[0] / 1000:.1f} km with {worst[1]} stops"),
        ),
        Figure(
            "planning: demo town generation time", demo_s, first_s,
            note=(f"CPU seconds, single-threaded, median of {len(demo_runs)} runs (wall {demo_wall:.1f}s); baseline = the reference model's first "
                  "solution only (its matrix + path cheapest arc, no search), same run"),
        ),
        Figure(
            "planning: 60,000 households generation time vs 5,500 x (60000/5500)", city_s, demo_s * n_city / n_demo,
            note=(f"{n_city} stops, {len(city)} corporations (largest {biggest} stops), "
                  f"{sum(p.worker_days for p in city_plans)} worker-days, "
                  f"{sum(len(p.unplaced) for p in city_plans)} unplaced; CPU seconds (wall {city_wall:.1f}s); "
                  f"baseline = demo time x {n_city}/{n_demo}, the demo timed between thirds of the city run"),
        ),
    ]
