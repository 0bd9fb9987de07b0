"""Working days: weekdays a worker works, minus weekends, Japanese public holidays (the `holidays`
package) and the worker's days off."""

import datetime as dt
from collections.abc import Iterable
from functools import lru_cache

import holidays

DEFAULT_WEEKDAYS = (1, 2, 3, 4, 5)


@lru_cache(maxsize=32)
def japanese_holidays(year: int) -> frozenset[dt.date]:
    return frozenset(holidays.Japan(years=year).keys())


def is_public_holiday(day: dt.date) -> bool:
    return day in japanese_holidays(day.year)


def working_days(
    start: dt.date, end: dt.date, *, weekdays: Iterable[int] = DEFAULT_WEEKDAYS, days_off: Iterable[dt.date] = ()
) -> list[dt.date]:
    """The dates in [start, end] on which visits may be scheduled for one worker."""
    allowed = {w for w in (weekdays or DEFAULT_WEEKDAYS) if 1 <= w <= 5}  # never weekends
    off = set(days_off)
    days = []
    day = start
    while day <= end:
        if day.isoweekday() in allowed and day not in off and not is_public_holiday(day):
            days.append(day)
        day += dt.timedelta(days=1)
    return days
