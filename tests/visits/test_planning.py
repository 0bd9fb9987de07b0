"""plan_partner on synthetic requests: pure computation, no database."""

import datetime as dt
import itertools
import math
import random
from collections import Counter, defaultdict

import pytest

from visits.planning import PartnerPlan, PartnerPlanRequest, Stop, WorkerDays, plan_partner

LAT0, LON0 = 35.49, 133.74
M_LAT = 111_320.0
M_LON = M_LAT * math.cos(math.radians(LAT0))
MONDAY = dt.date(2027, 1, 4)


def metres(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance (haversine, mean Earth radius), recomputed independently."""
    r = 6_371_008.8
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))


def weekdays(start: dt.date, count: int) -> tuple[dt.date, ...]:
    out = []
    d = start
    while len(out) < count:
        if d.isoweekday() <= 5:
            out.append(d)
        d += dt.timedelta(days=1)
    return tuple(out)


def point(x_m: float, y_m: float) -> tuple[float, float]:
    return LON0 + x_m / M_LON, LAT0 + y_m / M_LAT


def make_request(
    seed: int = 1, *, groups: int = 3, sizes: tuple[int, int] = (30, 60), priority: int = 3, capacity: int = 8,
    workers: int = 3, dates: int = 30, bands: tuple[str, ...] = ("am", "pm"),
) -> PartnerPlanRequest:
    """`groups` clusters ~1 km apart in a row (group g at x = g km), office 3 km south-west."""
    rng = random.Random(seed)
    stops = []
    for g in range(groups):
        n = rng.randint(*sizes)
        prio = set(rng.sample(range(n), min(priority, n)))
        cx, cy = g * 1_000.0, rng.uniform(-200, 200)
        for j in range(n):
            lon, lat = point(cx + rng.gauss(0, 220), cy + rng.gauss(0, 220))
            stops.append(Stop(id=f"s{g:02d}-{j:03d}", lon=lon, lat=lat, group=g + 1, priority=j in prio))
    rng.shuffle(stops)
    days = weekdays(MONDAY, dates)
    return PartnerPlanRequest(
        office=point(-2_000, -2_000), stops=tuple(stops),
        workers=tuple(WorkerDays(worker_id=10 + w, dates=days) for w in range(workers)),
        capacity=capacity, bands=bands,
    )


def by_day(plan: PartnerPlan) -> dict[tuple[dt.date, int], list]:
    days: dict[tuple[dt.date, int], list] = defaultdict(list)
    for v in plan.visits:
        days[(v.date, v.worker_id)].append(v)
    return {k: sorted(vs, key=lambda v: v.order) for k, vs in sorted(days.items())}


def check_plan(request: PartnerPlanRequest, plan: PartnerPlan, *, chronological: bool = True) -> None:
    """The invariants every plan must keep."""
    stops = {s.id: s for s in request.stops}
    # Every stop planned exactly once or listed unplaced.
    seen = Counter([v.stop_id for v in plan.visits] + plan.unplaced)
    assert set(seen) == set(stops)
    assert all(c == 1 for c in seen.values())
    days = by_day(plan)
    assert plan.worker_days == len(days)
    dates_of = {w.worker_id: set(w.dates) for w in request.workers}
    total = 0
    for (date, worker), visits in days.items():
        assert date in dates_of[worker], "only the worker's own dates"
        assert 1 <= len(visits) <= request.capacity, "capacity per worker-day"
        assert [v.order for v in visits] == list(range(1, len(visits) + 1))
        previous = request.office
        for pos, v in enumerate(visits):
            here = (stops[v.stop_id].lon, stops[v.stop_id].lat)
            assert abs(v.leg_m - metres(*previous, *here)) <= 1, "leg_m is the haversine distance"
            total += v.leg_m
            previous = here
            expected = request.bands[pos * len(request.bands) // len(visits)] if request.bands else ""
            assert v.band == expected, "positions split evenly over the bands, in order"
        total += round(metres(*previous, *request.office))
    assert abs(plan.total_m - total) <= len(days), "total_m is every closed route, return legs included"
    if chronological:
        slots = sorted({(d, w.worker_id) for w in request.workers for d in w.dates})
        unused = [s for s in slots if s not in days]
        if days and unused:
            assert min(d for d, _ in unused) >= max(d for d, _ in days), "worker-days filled chronologically"


def check_order(request: PartnerPlanRequest, plan: PartnerPlan) -> None:
    """自治会 in campaign order (the leftover carried over may mix neighbours) and priority first."""
    stops = {s.id: s for s in request.stops}
    dates: dict[int, list[dt.date]] = defaultdict(list)
    prio: dict[int, list[dt.date]] = defaultdict(list)
    normal: dict[int, list[dt.date]] = defaultdict(list)
    for v in plan.visits:
        s = stops[v.stop_id]
        if s.attempt > 1:
            continue
        dates[s.group].append(v.date)
        (prio if s.priority else normal)[s.group].append(v.date)
    groups = sorted(dates)
    for g, h in zip(groups, groups[2:], strict=False):
        assert max(dates[g]) <= min(dates[h]), f"group {g} before group {h}"
    for g in groups:
        if prio[g] and normal[g]:
            assert max(prio[g]) <= min(normal[g]), f"priority households of group {g} first"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_requests_keep_every_rule(seed):
    request = make_request(seed, groups=4)
    plan = plan_partner(request)
    check_plan(request, plan)
    check_order(request, plan)
    assert not plan.unplaced
    # Only the very last worker-day may be underfull: leftovers are carried into the next 自治会.
    sizes = [len(vs) for vs in by_day(plan).values()]
    assert all(n == request.capacity for n in sizes[:-1])
    assert plan.worker_days == math.ceil(len(request.stops) / request.capacity)


def test_days_are_compact_and_short():
    request = make_request(4, groups=3, priority=0)
    plan = plan_partner(request)
    stops = {s.id: s for s in request.stops}
    # Between-stop walking against a schedule that ignores geography within each 自治会 (stops in an
    # arbitrary order, same day sizes): the office legs are about the same, the rest must shrink.
    naive = 0.0
    ordered = sorted(request.stops, key=lambda s: (s.group, s.id[::-1]))
    for i in range(0, len(ordered), request.capacity):
        chunk = [(s.lon, s.lat) for s in ordered[i:i + request.capacity]]
        naive += sum(metres(*a, *b) for a, b in itertools.pairwise(chunk))
    ours = sum(v.leg_m for v in plan.visits if v.order > 1)
    assert ours < 0.4 * naive
    for visits in by_day(plan).values():
        pts = [(stops[v.stop_id].lon, stops[v.stop_id].lat) for v in visits]
        spread = max(metres(*a, *b) for a in pts for b in pts)
        assert spread < 2_500, "a day's households are close together"


def test_many_priority_households_fill_the_first_days():
    request = make_request(5, groups=3, sizes=(40, 50), priority=20, capacity=6)
    plan = plan_partner(request)
    check_plan(request, plan)
    check_order(request, plan)
    stops = {s.id: s for s in request.stops}
    first_group = [v for v in plan.visits if stops[v.stop_id].group == 1]
    first_days = sorted({(v.date, v.worker_id) for v in first_group})[:3]
    on_first_days = [v for v in first_group if (v.date, v.worker_id) in first_days]
    assert sum(stops[v.stop_id].priority for v in on_first_days) == 18  # 3 full days of priority


def test_large_group_is_split_into_pools():
    request = make_request(6, groups=2, sizes=(300, 320), priority=4, capacity=12, dates=40)
    plan = plan_partner(request)
    check_plan(request, plan)
    check_order(request, plan)
    assert not plan.unplaced
    assert plan.worker_days == math.ceil(len(request.stops) / 12)


def test_unplaced_when_worker_days_run_out():
    request = make_request(7, groups=4, workers=2, dates=5, capacity=8)  # 80 places for > 120 stops
    plan = plan_partner(request)
    check_plan(request, plan)
    assert len(plan.visits) == 2 * 5 * 8
    assert len(plan.unplaced) == len(request.stops) - 80
    stops = {s.id: s for s in request.stops}
    assert max(stops[v.stop_id].group for v in plan.visits) <= min(stops[i].group for i in plan.unplaced) + 1


def test_no_workers_leaves_everything_unplaced():
    request = make_request(8, groups=2, workers=0)
    plan = plan_partner(request)
    assert plan.visits == []
    assert sorted(plan.unplaced) == sorted(s.id for s in request.stops)
    assert plan.total_m == 0
    assert plan.worker_days == 0


def test_same_request_same_plan():
    request = make_request(9, groups=3)
    first = plan_partner(request)
    assert plan_partner(request) == first
    shuffled = PartnerPlanRequest(
        office=request.office, stops=tuple(sorted(request.stops, key=lambda s: s.id, reverse=True)),
        workers=request.workers, capacity=request.capacity, bands=request.bands,
    )
    assert plan_partner(shuffled) == first


@pytest.mark.parametrize("bands", [(), ("am", "pm", "ev")])
def test_bands(bands):
    request = make_request(10, groups=2, bands=bands, capacity=7)
    plan = plan_partner(request)
    check_plan(request, plan)
    if not bands:
        assert {v.band for v in plan.visits} == {""}
    else:
        assert {v.band for v in plan.visits} == set(bands)


def test_empty_request():
    request = PartnerPlanRequest(office=point(0, 0), stops=(), workers=(WorkerDays(1, weekdays(MONDAY, 3)),),
                                 capacity=5)
    assert plan_partner(request) == PartnerPlan()


def test_single_stop():
    lon, lat = point(800, 600)
    request = PartnerPlanRequest(
        office=point(0, 0), stops=(Stop(id="only", lon=lon, lat=lat, group=3),),
        workers=(WorkerDays(7, weekdays(MONDAY, 3)), WorkerDays(2, weekdays(MONDAY, 3))), capacity=10,
    )
    plan = plan_partner(request)
    assert len(plan.visits) == 1
    v = plan.visits[0]
    assert (v.stop_id, v.worker_id, v.date, v.band, v.order) == ("only", 2, MONDAY, "am", 1)
    assert v.leg_m == round(metres(*request.office, lon, lat))
    assert abs(v.leg_m - 1000) < 5
    assert plan.total_m == 2 * v.leg_m
    assert plan.worker_days == 1
    assert plan.unplaced == []


def test_progress_is_reported():
    seen: list[float] = []
    plan_partner(make_request(11, groups=3), progress=seen.append)
    assert seen and seen[-1] == 1.0
    assert seen == sorted(seen)
    assert all(0 <= f <= 1 for f in seen)


def _cluster(prefix: str, n: int, seed: int, **kw) -> list[Stop]:
    rng = random.Random(seed)
    out = []
    for j in range(n):
        lon, lat = point(rng.gauss(0, 150), rng.gauss(0, 150))
        out.append(Stop(id=f"{prefix}{j:02d}", lon=lon, lat=lat, group=1, **kw))
    return out


def test_reattempt_moves_to_the_other_band_by_reversing_the_day():
    # One day of 4: whichever half the absent household falls in, driving the day the other way
    # round puts it in the other band, on the same Monday.
    for seed in range(6):
        lon, lat = point(30 * seed, -40)
        again = Stop(id="again", lon=lon, lat=lat, group=1, attempt=2, avoid_weekday=1, avoid_band="am")
        stops = [*_cluster("a", 3, seed), again]
        request = PartnerPlanRequest(office=point(-1500, 0), stops=tuple(stops),
                                     workers=(WorkerDays(1, (MONDAY, MONDAY + dt.timedelta(days=1))),), capacity=4)
        plan = plan_partner(request)
        check_plan(request, plan)
        again = next(v for v in plan.visits if v.stop_id == "again")
        assert (again.date, again.band) == (MONDAY, "pm")
        assert plan.worker_days == 1


def test_reattempt_with_unknown_band_goes_to_another_weekday():
    stops = [*_cluster("a", 3, 1), Stop(id="again", lon=point(0, 0)[0], lat=point(0, 0)[1], group=1, attempt=2,
                                        avoid_weekday=1, avoid_band=None)]
    request = PartnerPlanRequest(office=point(-1500, 0), stops=tuple(stops),
                                 workers=(WorkerDays(1, (MONDAY, MONDAY + dt.timedelta(days=1))),), capacity=4)
    plan = plan_partner(request)
    check_plan(request, plan, chronological=False)
    again = next(v for v in plan.visits if v.stop_id == "again")
    assert again.date.isoweekday() != 1
    assert not plan.unplaced


def test_reattempts_never_repeat_weekday_and_band():
    rng = random.Random(12)
    base = make_request(12, groups=4, capacity=8, workers=2, dates=40)
    stops = []
    for s in base.stops:
        if rng.random() < 0.4:  # absent last time on a Monday or Tuesday, am or pm (or band unknown)
            s = Stop(id=s.id, lon=s.lon, lat=s.lat, group=s.group, priority=s.priority, attempt=2,
                     avoid_weekday=rng.choice([1, 2]), avoid_band=rng.choice(["am", "pm", None]))
        stops.append(s)
    request = PartnerPlanRequest(office=base.office, stops=tuple(stops), workers=base.workers,
                                 capacity=base.capacity, bands=base.bands)
    plan = plan_partner(request)
    check_plan(request, plan, chronological=False)
    check_order(request, plan)
    assert not plan.unplaced
    by_id = {s.id: s for s in stops}
    for v in plan.visits:
        s = by_id[v.stop_id]
        if s.attempt > 1 and v.date.isoweekday() == s.avoid_weekday:
            assert s.avoid_band is not None and v.band != s.avoid_band
    # Deferrals cost some short days, but not many.
    assert plan.worker_days <= math.ceil(len(stops) / 8) + 8
    assert plan_partner(request) == plan


# --- worker-days other visits already partly fill ------------------------------------------------


def test_partly_filled_worker_days_never_take_more_than_their_room():
    base = make_request(11, groups=3, capacity=8, workers=3, dates=30)
    rng = random.Random(5)
    workers = tuple(
        WorkerDays(worker_id=w.worker_id, dates=w.dates, room=tuple(rng.choice((0, 2, 5, 8, 8, 8)) for _ in w.dates))
        for w in base.workers
    )
    request = PartnerPlanRequest(office=base.office, stops=base.stops, workers=workers, capacity=8, bands=base.bands)
    plan = plan_partner(request)
    room = {(d, w.worker_id): r for w in workers for d, r in zip(w.dates, w.room or (), strict=True)}
    for (date, worker), visits in by_day(plan).items():
        assert len(visits) <= room[(date, worker)], (date, worker)
    assert not plan.unplaced  # there is room enough in all
    check_plan(request, plan, chronological=False)


def test_what_fits_no_whole_day_is_spread_over_partly_filled_days():
    base = make_request(12, groups=1, sizes=(20, 20), priority=0, capacity=8, workers=2, dates=2)
    # Four worker-days, each partly filled by other visits: 5 + 5 + 6 + 4 = 20 places left.
    rooms = ((5, 5), (6, 4))
    workers = tuple(WorkerDays(worker_id=w.worker_id, dates=w.dates, room=r) for w, r in zip(base.workers, rooms,
                                                                                               strict=True))
    request = PartnerPlanRequest(office=base.office, stops=base.stops, workers=workers, capacity=8, bands=base.bands)
    plan = plan_partner(request)
    room = {(d, w.worker_id): r for w in workers for d, r in zip(w.dates, w.room or (), strict=True)}
    counts = {k: len(v) for k, v in by_day(plan).items()}
    assert set(counts) == set(room), "every partly filled worker-day is used"
    assert all(counts[k] <= room[k] for k in counts)
    # The short last day (4 stops) takes the first worker-day with room for it (5), so one place of
    # that day stays free and one stop is left for a later plan: never more than the room.
    assert len(plan.visits) + len(plan.unplaced) == 20 and len(plan.unplaced) <= 1
    check_plan(request, plan, chronological=False)


def test_free_worker_days_plan_as_before():
    """room=None and room=(capacity, …) are the same request."""
    base = make_request(13)
    full = PartnerPlanRequest(
        office=base.office, stops=base.stops, capacity=base.capacity, bands=base.bands,
        workers=tuple(WorkerDays(worker_id=w.worker_id, dates=w.dates, room=(base.capacity,) * len(w.dates))
                      for w in base.workers),
    )
    a, b = plan_partner(base), plan_partner(full)
    assert [(v.stop_id, v.worker_id, v.date, v.order) for v in a.visits] == [
        (v.stop_id, v.worker_id, v.date, v.order) for v in b.visits]
    assert a.total_m == b.total_m
