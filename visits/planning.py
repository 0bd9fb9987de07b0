"""Schedule planning for a partner corporation: which households each worker visits on which day,
and in what order. Pure computation (no database): services.py loads the inputs and writes the result.

Interface (implementation below):
    plan_partner(request: PartnerPlanRequest, progress: Callable[[float], None] | None = None) -> PartnerPlan

Approach (why it is sound)
--------------------------
The campaign is a capacitated VRP with a far depot (the office) and clustered customers (自治会),
plus an order: 自治会 by 自治会, priority households first. For such instances the route length is
dominated by the office legs, about 2·d(office, area) per worker-day (the Haimovich–Rinnooy Kan bound
2·Σd_i/capacity), so the first rule is *as few worker-days as possible, all of them full*; the
second is that each day covers a compact piece of the area.

1. Pools. 自治会 are taken in campaign order. A pool is one 自治会 plus the leftover carried from the
   previous pool (fewer than `capacity` stops); a very large 自治会 is cut into sub-pools of at most
   ~240 stops by recursive coordinate bisection. All matrices are per pool (O(k²) with k ≤ ~250),
   so the work grows linearly with the number of stops.
2. Exact day sizes. A pool of m stops becomes ⌊m/cap⌋ full days plus one day of m mod cap stops.
   That short day is the leftover: it is carried into the next pool (so only the campaign's last day
   is short) and costed, while this pool is optimised, as a tour from the next pool's centroid (where
   its stops will actually be visited). Stops already carried once are never carried again. A
   自治会 smaller than one day (with nothing carried in) joins the next pool whole, its priority
   stops still among that pool's first days.
3. Initial solution: iterated tour partitioning (ITP, Haimovich & Rinnooy Kan 1985): one TSP tour
   through the pool (OR-Tools' Christofides construction), cut into consecutive segments of the
   exact day sizes, trying every rotation of the cut points (O(m·days) with prefix sums).
4. Improvement: an OR-Tools routing model of the pool where every vehicle's capacity is its exact
   day size (so all days stay full), priority stops are restricted to the pool's first days,
   carried stops are kept out of the leftover day; greedy descent with the exchange / cross /
   2-opt / Or-opt / relocate operators until a local optimum. No time limits and no
   time-limited LNS operators: the same request always gives the same plan.
5. Days in order. The pool's days (priority days first) take the free worker-days in chronological
   order: all workers' first date before anyone's second date. A worker-day that other visits
   already partly fill (another campaign's, or visits a re-plan keeps) has only the rest of the
   capacity: it takes a day that fits, and what fitted nowhere is spread over such days at the
   end, so no worker-day ever holds more than the capacity. Within a day, route positions are
   split evenly over the time bands, in order.
6. Re-attempts (不在): never the same weekday *and* band as the absent attempt (an unknown band
   rules out the weekday). A pool's interchangeable full days are matched to its worker-days so as
   to avoid conflicts; a closed tour can be driven either way, which swaps the bands, and the
   better direction is kept; stops still in conflict are deferred into the next pool (a later
   worker-day) and checked again there.

Distances are great-circle (haversine) metres rounded to integers: no road network offline.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from ortools.constraint_solver import pywrapcp, routing_enums_pb2
from ortools.util import optional_boolean_pb2

from visits.distances import haversine_m, matrix_m


@dataclass(frozen=True)
class Stop:
    """A household to visit."""

    id: str                      # household id (UUID as text)
    lon: float
    lat: float
    group: int                   # the 自治会's position in the campaign order (visit groups in this order)
    priority: bool = False       # heard as 気になる世帯 at the hearing: first within its group
    attempt: int = 1             # 1 for a first visit; 2.. for a re-attempt after 不在
    avoid_weekday: int | None = None  # ISO weekday of the previous (absent) attempt
    avoid_band: str | None = None     # time band of the previous (absent) attempt


@dataclass(frozen=True)
class WorkerDays:
    worker_id: int
    dates: tuple[dt.date, ...]   # the dates this worker can visit, ascending (holidays/days off already removed)
    # Stops each date can still take (its other visits, of any campaign, already counted); None: the
    # request's capacity on every date. A date with no room left is simply not listed.
    room: tuple[int, ...] | None = None


@dataclass(frozen=True)
class PartnerPlanRequest:
    office: tuple[float, float]  # (lon, lat): where each day's route starts and ends
    stops: tuple[Stop, ...]
    workers: tuple[WorkerDays, ...]
    capacity: int                # visits per worker-day (>= 1)
    bands: tuple[str, ...] = ("am", "pm")  # time bands of a day, in order; may be empty


@dataclass(frozen=True)
class PlannedStop:
    stop_id: str
    worker_id: int
    date: dt.date
    band: str                    # "" when the request has no bands
    order: int                   # 1-based position in the day's route
    leg_m: int                   # metres from the previous point of the route (office for order 1)


@dataclass
class PartnerPlan:
    visits: list[PlannedStop] = field(default_factory=list)
    unplaced: list[str] = field(default_factory=list)  # stop ids with no worker-day left
    total_m: int = 0             # total route length, office → stops → office, over all worker-days
    worker_days: int = 0


# --- OR-Tools helpers ------------------------------------------------------------------------

_FORBIDDEN = 1 << 40  # cost of an arc into a stop the day may not hold
_MAX_POOL = 240  # stops per pool (before the carried leftover): keeps matrices and searches small

# Local-search operators used (all others are switched off: several large-neighbourhood ones run
# under a wall-clock limit, which would make the result depend on the machine's speed).
_TSP_OPERATORS: tuple[str, ...] = ()  # Christofides alone: the tour only seeds the partition
_VRP_OPERATORS = ("use_exchange", "use_cross", "use_two_opt", "use_or_opt", "use_relocate")


def _search_parameters(operators: Sequence[str], first: int) -> object:
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = first
    params.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GREEDY_DESCENT
    ops = params.local_search_operators
    for f in ops.DESCRIPTOR.fields:
        setattr(ops, f.name, optional_boolean_pb2.BOOL_TRUE if f.name in operators else optional_boolean_pb2.BOOL_FALSE)
    params.use_cp_sat = optional_boolean_pb2.BOOL_FALSE
    params.use_generalized_cp_sat = optional_boolean_pb2.BOOL_FALSE
    return params


def _tsp_cycle(dist: np.ndarray) -> list[int]:
    """A short closed tour over all points of `dist` (indices), starting at 0."""
    n = len(dist)
    if n <= 3:
        return list(range(n))
    manager = pywrapcp.RoutingIndexManager(n, 1, 0)
    routing = pywrapcp.RoutingModel(manager)
    transit = routing.RegisterTransitMatrix(dist.tolist())
    routing.SetArcCostEvaluatorOfAllVehicles(transit)
    solution = routing.SolveWithParameters(
        _search_parameters(_TSP_OPERATORS, routing_enums_pb2.FirstSolutionStrategy.CHRISTOFIDES)
    )
    if solution is None:  # pragma: no cover - a TSP without side constraints is always solvable
        return list(range(n))
    order = []
    index = routing.Start(0)
    while not routing.IsEnd(index):
        order.append(manager.IndexToNode(index))
        index = solution.Value(routing.NextVar(index))
    return order


# --- one pool --------------------------------------------------------------------------------


@dataclass
class _Pool:
    """Stops (indices into the request) of one pool, by role."""

    priority: list[int]
    normal: list[int]


def _itp_initial(
    dist: np.ndarray, tour: list[int], sizes: list[int], depots: list[int], must_be_free: list[bool],
    locked: np.ndarray,
) -> list[list[int]] | None:
    """Cut the cyclic `tour` (node ids of `dist`) into consecutive segments of the given sizes (in
    this order along the tour), each a route from/to its depot node; try every rotation and keep the
    cheapest one in which the segments flagged `must_be_free` contain no locked node."""
    n = len(tour)
    if n == 0:
        return [[] for _ in sizes]
    seq = np.array(tour + tour, dtype=np.int64)
    steps = dist[seq[:-1], seq[1:]]
    prefix = np.concatenate(([0], np.cumsum(steps)))
    locked_prefix = np.concatenate(([0], np.cumsum(locked[seq])))
    starts = np.arange(n)
    cost = np.zeros(n, dtype=np.int64)
    ok = np.ones(n, dtype=bool)
    offset = 0
    for size, depot, free in zip(sizes, depots, must_be_free, strict=True):
        if size == 0:
            continue
        first = starts + offset
        last = first + size - 1
        cost += dist[depot, seq[first]] + (prefix[last] - prefix[first]) + dist[seq[last], depot]
        if free:
            ok &= (locked_prefix[last + 1] - locked_prefix[first]) == 0
        offset += size
    if not ok.any():
        return None
    best = int(np.flatnonzero(ok)[np.argmin(cost[ok])])
    routes: list[list[int]] = []
    offset = 0
    for size in sizes:
        routes.append([int(x) for x in seq[best + offset: best + offset + size]])
        offset += size
    return routes


def _solve_pool(
    lon: np.ndarray, lat: np.ndarray, priority: np.ndarray, office: tuple[float, float], pool: _Pool,
    locked: list[int], capacity: int, carry_to: tuple[float, float] | None,
) -> tuple[list[list[int]], list[int]]:
    """Days for one pool: routes (stop indices, office → … → office) in visiting order, and the
    stops carried to the next pool. `locked` stops (carried in) are never carried again, and
    those of them that are priority stops keep their place in the pool's first days; `carry_to` is
    the next pool's centroid, or None when nothing may be carried."""
    normal = pool.normal
    prio = pool.priority + [i for i in locked if priority[i]]
    held = [i for i in locked if not priority[i]]
    stops = prio + normal + held
    m = len(stops)
    if m == 0:
        return [], []
    q, r = divmod(m, capacity)
    if q == 0 and carry_to is not None and len(prio) + len(normal) == m:
        return [], prio + normal  # less than a day, nothing carried in: all of it joins the next pool
    p = len(prio)
    k = -(-p // capacity)  # days that hold priority stops (the pool's first k days)
    carry = carry_to is not None and r > 0 and k <= q and len(normal) >= r
    caps = [capacity] * q + ([r] if r else [])
    nv = len(caps)
    carry_vehicle = nv - 1 if carry else -1

    # Nodes: 0 office, then the next pool's centroid (the carried day's depot) if carrying, then the stops.
    depot_lon, depot_lat = [office[0]], [office[1]]
    if carry_to is not None and carry:
        depot_lon.append(carry_to[0])
        depot_lat.append(carry_to[1])
    base = len(depot_lon)
    dist = matrix_m(np.concatenate((depot_lon, lon[stops])), np.concatenate((depot_lat, lat[stops])))
    node_of = {s: i + base for i, s in enumerate(stops)}
    stop_of = {i + base: s for i, s in enumerate(stops)}
    depots = [1 if v == carry_vehicle else 0 for v in range(nv)]

    # Initial solution (ITP on one tour of the pool): priority stops first, in tour order.
    tour = [t + base for t in _tsp_cycle(dist[base:, base:])]
    prio_nodes = {node_of[s] for s in prio}
    prio_tour = [t for t in tour if t in prio_nodes]
    rest_tour = [t for t in tour if t not in prio_nodes]
    initial: list[list[int]] = [[] for _ in range(nv)]
    for v in range(k):
        initial[v] = prio_tour[v * capacity:(v + 1) * capacity]
    fill = [caps[v] - len(initial[v]) for v in range(nv)]
    order = [v for v in range(nv) if v == carry_vehicle] + [v for v in range(nv) if v != carry_vehicle]
    locked_flags = np.zeros(m + base, dtype=np.int64)
    for s in held:
        locked_flags[node_of[s]] = 1
    segments = _itp_initial(
        dist, rest_tour, [fill[v] for v in order], [depots[v] for v in order],
        [v == carry_vehicle for v in order], locked_flags,
    )
    if segments is None:  # carried stops everywhere: no leftover can be formed, keep every day here
        return _solve_pool(lon, lat, priority, office, pool, locked, capacity, None)
    for v, seg in zip(order, segments, strict=True):
        initial[v] = initial[v] + seg

    routes = _improve(dist, base, caps, depots, initial, prio_nodes, set(locked_flags.nonzero()[0].tolist()), k,
                      carry_vehicle)
    days = [[stop_of[n] for n in routes[v]] for v in range(nv) if v != carry_vehicle]
    left = [stop_of[n] for n in routes[carry_vehicle]] if carry else []
    return days, left


def _improve(
    dist: np.ndarray, base: int, caps: list[int], depots: list[int], initial: list[list[int]], prio_nodes: set[int],
    locked_nodes: set[int], k: int, carry_vehicle: int,
) -> list[list[int]]:
    """Greedy descent over the pool's days with OR-Tools; every day keeps its exact size."""
    nv = len(caps)
    n = len(dist)
    manager = pywrapcp.RoutingIndexManager(n, nv, depots, depots)
    routing = pywrapcp.RoutingModel(manager)
    demand = routing.RegisterUnaryTransitVector([0] * base + [1] * (n - base))
    routing.AddDimensionWithVehicleCapacity(demand, 0, caps, True, "load")
    # Which days may hold which stops: priority stops on the first k days only (the first k - 1 of
    # them holding nothing else), carried stops never on the day carried on. Expressed as a
    # prohibitive cost on arcs into a forbidden stop: the start is feasible and greedy descent only
    # accepts improving moves, so a forbidden assignment can never appear (and the search keeps its
    # fast cost filters instead of constraint propagation).
    prio = np.zeros(n, dtype=bool)
    prio[list(prio_nodes)] = True
    locked = np.zeros(n, dtype=bool)
    locked[list(locked_nodes)] = True
    other = np.zeros(n, dtype=bool)
    other[base:] = True
    other &= ~prio
    transits: dict[bytes, int] = {}
    for v in range(nv):
        forbidden = np.zeros(n, dtype=bool)
        if v >= k:
            forbidden |= prio
        if v < k - 1:
            forbidden |= other
        if v == carry_vehicle:
            forbidden |= locked
        key = forbidden.tobytes()
        if key not in transits:
            costs = dist + np.where(forbidden, _FORBIDDEN, 0)[None, :]
            transits[key] = routing.RegisterTransitMatrix(costs.tolist())
        routing.SetArcCostEvaluatorOfVehicle(transits[key], v)
    params = _search_parameters(_VRP_OPERATORS, routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC)
    routing.CloseModelWithParameters(params)
    start = routing.ReadAssignmentFromRoutes(
        [[manager.NodeToIndex(x) for x in route] for route in initial], True
    )
    if start is None:  # pragma: no cover - the initial solution is built feasible
        return initial
    solution = routing.SolveFromAssignmentWithParameters(start, params) or start
    routes = []
    for v in range(nv):
        route = []
        index = solution.Value(routing.NextVar(routing.Start(v)))
        while not routing.IsEnd(index):
            route.append(manager.IndexToNode(index))
            index = solution.Value(routing.NextVar(index))
        routes.append(route)
    return routes


# --- pools -----------------------------------------------------------------------------------


def _bisect(idx: list[int], lon: np.ndarray, lat: np.ndarray, limit: int, unit: int) -> list[list[int]]:
    """Cut a set of stops into spatially compact chunks of at most `limit` stops (sizes multiples
    of `unit` except the last), halving along the longer side each time."""
    if len(idx) <= limit:
        return [idx]
    arr = np.array(idx)
    x = lon[arr] * math.cos(math.radians(float(lat[arr].mean())))
    y = lat[arr]
    key = x if np.ptp(x) >= np.ptp(y) else y
    order = arr[np.lexsort((arr, key))]
    half = max(unit, round(len(idx) / 2 / unit) * unit)
    half = min(half, len(idx) - 1)
    return _bisect(order[:half].tolist(), lon, lat, limit, unit) + _bisect(order[half:].tolist(), lon, lat, limit, unit)


def _pools(stops: Sequence[Stop], lon: np.ndarray, lat: np.ndarray, capacity: int) -> list[_Pool]:
    by_group: dict[int, list[int]] = {}
    for i in sorted(range(len(stops)), key=lambda i: (stops[i].group, stops[i].id)):
        by_group.setdefault(stops[i].group, []).append(i)
    limit = max(capacity, (_MAX_POOL // capacity) * capacity)
    pools: list[_Pool] = []
    for group in sorted(by_group):
        members = by_group[group]
        prio = [i for i in members if stops[i].priority]
        normal = [i for i in members if not stops[i].priority]
        if len(prio) + len(normal) <= limit:
            pools.append(_Pool(prio, normal))
            continue
        first_prio: list[int] = []
        if len(prio) > limit:
            chunks = _bisect(prio, lon, lat, limit, capacity)
            pools.extend(_Pool(c, []) for c in chunks[:-1])
            first_prio = chunks[-1]
        else:
            first_prio = prio
        chunks = _bisect(normal, lon, lat, limit, capacity) if normal else [[]]
        # The priority stops join the chunk nearest to them.
        if first_prio and len(chunks) > 1:
            cx, cy = float(lon[first_prio].mean()), float(lat[first_prio].mean())
            near = min(range(len(chunks)), key=lambda c: (lon[chunks[c]].mean() - cx) ** 2
                       + (lat[chunks[c]].mean() - cy) ** 2)
            chunks.insert(0, chunks.pop(near))
        pools.append(_Pool(first_prio, chunks[0]))
        pools.extend(_Pool([], c) for c in chunks[1:])
    return [p for p in pools if p.priority or p.normal]


# --- days ------------------------------------------------------------------------------------


def _band(position: int, n: int, bands: tuple[str, ...]) -> str:
    """Time band of the 0-based `position` in a day of n stops: positions split evenly, in order."""
    if not bands:
        return ""
    return bands[position * len(bands) // n]


def _conflicts(seq: list[int], stops: Sequence[Stop], weekday: int, bands: tuple[str, ...]) -> list[int]:
    """Stops of `seq` that would repeat the weekday and band of their absent attempt. A previous
    attempt without a known band (or a campaign without bands) rules out the whole weekday."""
    out = []
    for pos, i in enumerate(seq):
        s = stops[i]
        if s.attempt <= 1 or s.avoid_weekday is None or s.avoid_weekday != weekday:
            continue
        if not bands or not s.avoid_band or s.avoid_band == _band(pos, len(seq), bands):
            out.append(i)
    return out


def _day(seq: list[int], stops: Sequence[Stop], weekday: int, bands: tuple[str, ...]) -> tuple[list[int], list[int]]:
    """Choose the direction of a closed tour with the fewest re-attempt conflicts; conflicting
    stops are dropped (deferred) until none remain. Returns (day order, deferred)."""
    deferred: list[int] = []
    while seq:
        forward = _conflicts(seq, stops, weekday, bands)
        if not forward:
            break
        backward = _conflicts(seq[::-1], stops, weekday, bands)
        if len(backward) < len(forward):
            seq, bad = seq[::-1], backward
            if not bad:
                break
        else:
            bad = forward
        gone = set(bad)
        deferred.extend(bad)
        seq = [i for i in seq if i not in gone]
    return seq, deferred


def _arrange(
    days: list[list[int]], stops: Sequence[Stop], weekdays: list[int], bands: tuple[str, ...], capacity: int,
) -> list[list[int]]:
    """Order a pool's days on its worker-days (of the given weekdays) so that re-attempts meet their
    absent weekday as seldom as possible. Priority days stay first and a short day stays last;
    the full days in between are interchangeable (greedy, in slot order)."""
    if not any(stops[i].attempt > 1 for day in days for i in day):
        return days
    head = 0
    while head < len(days) and any(stops[i].priority for i in days[head]):
        head += 1
    tail = len(days) - 1 if days and head < len(days) and len(days[-1]) < capacity else len(days)
    free = list(range(head, tail))
    out = days[:head]
    for j in range(head, tail):
        if j >= len(weekdays):
            out.extend(days[r] for r in free)
            break

        def cost(r: int, wd: int = weekdays[j]) -> int:
            return min(len(_conflicts(days[r], stops, wd, bands)), len(_conflicts(days[r][::-1], stops, wd, bands)))

        best = min(free, key=lambda r: (cost(r), r))
        free.remove(best)
        out.append(days[best])
    return out + days[tail:]


class _Slots:
    """The free worker-days in date order (all workers' first date before anyone's second). A day
    of stops takes the earliest worker-day with room for all of it: a worker-day that other visits
    (another campaign's, or kept ones) already partly fill takes only a day that fits in what is
    left, so no worker-day ever holds more than the capacity; what fitted nowhere is spread over
    such partly filled worker-days at the end (`fill`)."""

    def __init__(self, workers: Sequence[WorkerDays], capacity: int) -> None:
        rooms: dict[tuple[dt.date, int], int] = {}
        for w in workers:
            for i, d in enumerate(w.dates):
                room = capacity if w.room is None else min(capacity, w.room[i])
                if room > 0:
                    rooms[(d, w.worker_id)] = room
        self.full = sorted(k for k, r in rooms.items() if r >= capacity)
        self.partial: list[tuple[dt.date, int, int]] = sorted((d, w, r) for (d, w), r in rooms.items() if r < capacity)
        self.next = 0

    def exhausted(self) -> bool:
        return self.next >= len(self.full) and not self.partial

    def take(self, size: int) -> tuple[dt.date, int, int] | None:
        """The earliest worker-day with room for `size` stops, as (date, worker, room); None if none."""
        full = self.full[self.next] if self.next < len(self.full) else None
        part = next((i for i, p in enumerate(self.partial) if p[2] >= size), None)
        if part is not None and (full is None or (self.partial[part][0], self.partial[part][1]) < full):
            return self.partial.pop(part)
        if full is None:
            return None
        self.next += 1
        return full[0], full[1], size

    def take_partial(self) -> tuple[dt.date, int, int] | None:
        """The earliest partly filled worker-day, whatever its room."""
        if not self.partial:
            return None
        return self.partial.pop(0)

    def weekdays(self, n: int) -> list[int]:
        """Weekdays of the next n full worker-days (for matching re-attempts to days)."""
        return [d.isoweekday() for d, _ in self.full[self.next:self.next + n]]


def plan_partner(request: PartnerPlanRequest, progress: Callable[[float], None] | None = None) -> PartnerPlan:
    """Plan every stop of one partner corporation onto its workers' days (see the module docstring)."""
    if request.capacity < 1:
        raise ValueError("capacity must be at least 1")
    stops = request.stops
    cap = request.capacity
    bands = tuple(request.bands)
    office = (float(request.office[0]), float(request.office[1]))
    slots = _Slots(request.workers, cap)
    plan = PartnerPlan()
    if not stops:
        if progress:
            progress(1.0)
        return plan
    lon = np.array([s.lon for s in stops], dtype=np.float64)
    lat = np.array([s.lat for s in stops], dtype=np.float64)
    priority = np.array([s.priority for s in stops], dtype=bool)
    pools = _pools(stops, lon, lat, cap)
    total = len(stops)
    done = 0
    overflow: list[int] = []  # stops of days that found no worker-day with room for all of them

    def place(route: list[int], date: dt.date, worker: int) -> list[int]:
        """Put one day's route on a worker-day; return the deferred stops."""
        seq, deferred = _day(route, stops, date.isoweekday(), bands)
        if not seq:
            return deferred
        previous = office
        for pos, i in enumerate(seq):
            here = (stops[i].lon, stops[i].lat)
            leg = round(haversine_m(previous[0], previous[1], here[0], here[1]))
            plan.visits.append(PlannedStop(stops[i].id, worker, date, _band(pos, len(seq), bands), pos + 1, leg))
            plan.total_m += leg
            previous = here
        plan.total_m += round(haversine_m(previous[0], previous[1], office[0], office[1]))
        plan.worker_days += 1
        return deferred

    def emit(route: list[int]) -> list[int]:
        """Put one day on the earliest worker-day with room for it; return the deferred stops."""
        taken = slots.take(len(route))
        if taken is None:
            overflow.extend(route)
            return []
        return place(route, taken[0], taken[1])

    carry: list[int] = []
    deferred: list[int] = []
    for n, pool in enumerate(pools):
        if slots.exhausted():
            plan.unplaced.extend(stops[i].id for i in carry + deferred)
            for rest in pools[n:]:
                plan.unplaced.extend(stops[i].id for i in rest.priority + rest.normal)
            carry, deferred = [], []
            break
        target = None
        if n + 1 < len(pools):
            nxt = pools[n + 1].priority + pools[n + 1].normal
            target = (float(lon[nxt].mean()), float(lat[nxt].mean()))
        days, carry_next = _solve_pool(lon, lat, priority, office, pool, carry + deferred, cap, target)
        done += len(pool.priority) + len(pool.normal)
        carry, deferred = carry_next, []
        for route in _arrange(days, stops, slots.weekdays(len(days)), bands, cap):
            deferred.extend(emit(route))
        if progress:
            progress(min(0.99, done / total))

    # The campaign's tail: what was deferred after the last pool (only re-attempts).
    pending = carry + deferred
    while pending:
        if slots.exhausted():
            plan.unplaced.extend(stops[i].id for i in pending)
            break
        days, _ = _solve_pool(lon, lat, priority, office, _Pool([], []), pending, cap, None)
        pending = []
        for route in _arrange(days, stops, slots.weekdays(len(days)), bands, cap):
            pending.extend(emit(route))
    # What fitted on no whole worker-day goes, in route order, onto the partly filled ones.
    left = overflow
    while left:
        taken = slots.take_partial()
        if taken is None:
            plan.unplaced.extend(stops[i].id for i in left)
            break
        date, worker, room = taken
        piece, left = left[:room], left[room:]
        left = left + place(piece, date, worker)  # a re-attempt refused on this weekday tries the next
    if progress:
        progress(1.0)
    return plan
