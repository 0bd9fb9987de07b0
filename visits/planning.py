"""Schedule planning for a partner corporation: which households each worker visits on which day,
and in what order. Pure computation (no database): services.py loads the inputs and writes the result.

Interface (implementation below):
    plan_partner(request: PartnerPlanRequest, progress: Callable[[float], None] | None = None) -> PartnerPlan
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field


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


def plan_partner(request: PartnerPlanRequest, progress: Callable[[float], None] | None = None) -> PartnerPlan:
    raise NotImplementedError
