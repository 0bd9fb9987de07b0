"""The plausible window of every user-entered date, in one place. A check-in dated 2062 would
silence a 見守り for decades and a campaign dated 0001-01-01 breaks every schedule, so dates are
refused outside these windows (422), never stored.

- facts (check-ins, contacts, visits, consents, meetings, closures) happened: from 2000-01-01 to
  today in Asia/Tokyo; a datetime may run up to CLOCK_SKEW ahead of the server's clock;
- plans (campaigns, days off, re-planning) lie from the start of the previous 年度 to the end of the
  next 年度 (April–March);
- birth years from 1900 to this year.

The bounds move with the clock (django.utils.timezone.localdate()), so they are computed per call."""

import datetime as dt
import functools
from typing import Annotated

from django.utils import timezone
from pydantic import AfterValidator, Field

EARLIEST_FACT = dt.date(2000, 1, 1)
EARLIEST_BIRTH_YEAR = 1900
CLOCK_SKEW = dt.timedelta(minutes=10)


def fiscal_year_of(day: dt.date) -> int:
    """年度: April to March, named by the year it starts in."""
    return day.year if day.month >= 4 else day.year - 1


def fiscal_year_bounds(fiscal_year: int) -> tuple[dt.date, dt.date]:
    return dt.date(fiscal_year, 4, 1), dt.date(fiscal_year + 1, 3, 31)


def fact_date_bounds() -> tuple[dt.date, dt.date]:
    return EARLIEST_FACT, timezone.localdate()


@functools.cache
def _earliest_fact_datetime(tz: dt.tzinfo) -> dt.datetime:
    return dt.datetime.combine(EARLIEST_FACT, dt.time(0, 0), tzinfo=tz)


def fact_datetime_bounds() -> tuple[dt.datetime, dt.datetime]:
    # The earliest moment is fixed per time zone: made once, not at each of a push's 500 visits.
    return _earliest_fact_datetime(timezone.get_default_timezone()), timezone.now() + CLOCK_SKEW


def plan_date_bounds() -> tuple[dt.date, dt.date]:
    this_year = fiscal_year_of(timezone.localdate())
    return fiscal_year_bounds(this_year - 1)[0], fiscal_year_bounds(this_year + 1)[1]


def start_date_bounds() -> tuple[dt.date, dt.date]:
    """Something that began in the past or begins soon (a 見守り's first day)."""
    return EARLIEST_FACT, plan_date_bounds()[1]


def birth_year_bounds() -> tuple[int, int]:
    return EARLIEST_BIRTH_YEAR, timezone.localdate().year


def _within(value, bounds: tuple, what: str):
    low, high = bounds
    if not low <= value <= high:
        raise ValueError(f"{what} must be between {low.isoformat()} and {high.isoformat()}")
    return value


def check_fact_date(value: dt.date) -> dt.date:
    return _within(value, fact_date_bounds(), "a date that has happened")


def check_fact_datetime(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError("needs a time zone offset, e.g. 2026-11-22T10:15:00+09:00")
    return _within(value, fact_datetime_bounds(), "a time that has happened")


def check_plan_date(value: dt.date) -> dt.date:
    return _within(value, plan_date_bounds(), "a planned date")


def check_start_date(value: dt.date) -> dt.date:
    return _within(value, start_date_bounds(), "a start date")


def check_birth_year(value: int) -> int:
    low, high = birth_year_bounds()
    if not low <= value <= high:
        raise ValueError(f"a birth year must be between {low} and {high}")
    return value


def campaign_date_problems(fiscal_year: int, start: dt.date, end: dt.date) -> list[tuple[str, str]]:
    """(field, message) for a campaign whose dates do not lie in its 年度, in order."""
    first, last = fiscal_year_bounds(fiscal_year)
    problems = []
    for field, value in (("start_date", start), ("end_date", end)):
        if not first <= value <= last:
            problems.append((field, f"must lie in 年度 {fiscal_year} ({first.isoformat()} to {last.isoformat()})"))
    if end < start:
        problems.append(("end_date", "must not be before start_date"))
    return problems


FactDate = Annotated[
    dt.date, AfterValidator(check_fact_date),
    Field(description="A date that has happened: from 2000-01-01 to today (Asia/Tokyo)."),
]
FactDateTime = Annotated[
    dt.datetime, AfterValidator(check_fact_datetime),
    Field(description="When it happened, with a time zone offset: from 2000-01-01 to now (10 minutes of clock skew allowed)."),
]
PlanDate = Annotated[
    dt.date, AfterValidator(check_plan_date),
    Field(description="A planned date: from the start of the previous 年度 to the end of the next 年度 (April–March)."),
]
StartDate = Annotated[
    dt.date, AfterValidator(check_start_date),
    Field(description="From 2000-01-01 to the end of the next 年度 (April–March)."),
]
BirthYear = Annotated[
    int, AfterValidator(check_birth_year), Field(description="From 1900 to this year."),
]


def require_fact_date(value: dt.date, *, field: str) -> dt.date:
    """The services' own guard (imports, jobs and the admin do not pass through the API's
    schemas): a fact's date outside its window is a 422 naming the field."""
    from backend.errors import InvalidInput

    try:
        return check_fact_date(value)
    except ValueError as exc:
        raise InvalidInput(f"{field}: {exc}", details=[{"loc": ["body", field], "msg": str(exc)}]) from exc
