"""Reports served from a stored result (issue 15, point 5): the 年度 report and the per-corporation
report are whole-year aggregates whose cost grows with the town (seconds at a million households),
so each is computed once per version of its inputs and stored (ReportSnapshot).

- A report's version is the code that computes it (a hash of its modules' source: a deploy that
  changes a definition never serves the old numbers) and the data versions of every table it reads
  (maps.queries.data_version: per municipality, kept by statement-level triggers, read by index
  lookups whatever the town's size). Another municipality's writes do not change it.
- Same version: the stored result, no aggregate. Changed: one refresh per version is queued
  (django-q2) and the read answers from the stored result, saying it is stale; with tasks run
  inline (tests) the refresh happens first. A report never computed for its parameters is
  computed in the request, once (concurrent first reads wait for the first).
- A closed 年度 is the same case: nothing it reads changes, or if anything of the municipality
  changes (a visit today), its next read answers at once from the stored result and refreshes it
  behind.
- The stored result is the full report; small cells are suppressed on the way out (fiscal.published).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
from django.db import connection, transaction
from django.http import HttpResponse
from django.utils import timezone

from api import renderers
from backend.errors import NotFound
from maps.queries import VersionContext, data_version
from maps.services import claim_refresh
from reports import corporations, fiscal
from reports.corporation_schemas import CorporationReport
from reports.models import ReportKind, ReportSnapshot
from reports.schemas import FiscalYearReport
from visits import coverage
from visits.models import Campaign

logger = logging.getLogger("tsunagu.reports")



@dataclass(frozen=True)
class Inputs:
    """What a report reads: the logged inputs (maps.queries.LOGGED_INPUTS) and the modules whose
    code computes it."""

    tables: tuple[str, ...]
    modules: tuple[ModuleType, ...]


INPUTS = {
    # reports.fiscal: coverage cells (自治会, households, campaigns and their 自治会 and states,
    # allocations), visit records, concerns and their transitions, cases (their stage history is
    # written with them), contacts, case meetings, 支え愛連絡会, the names of 圏域 and 地区.
    ReportKind.FISCAL_YEAR: Inputs(
        ("household", "neighborhood", "daily_life_area", "district", "campaign", "campaign_target", "allocation",
         "campaign_household", "visit_record", "concern", "concern_transition", "case", "case_contact",
         "case_meeting", "meeting"),
        (fiscal, coverage),
    ),
    # reports.corporations: scheduled visits and their records, campaign states, allocations, the
    # campaigns (scope and name), the corporations' and workers' names.
    ReportKind.CORPORATIONS: Inputs(
        ("campaign", "scheduled_visit", "visit_record", "campaign_household", "allocation", "partner", "user"),
        (corporations,),
    ),
}


@cache
def _code_version(kind: str) -> str:
    digest = hashlib.sha256()
    for module in INPUTS[ReportKind(kind)].modules:
        digest.update(Path(str(module.__file__)).read_bytes())
    return digest.hexdigest()[:12]


def current_version(kind: str, municipality_id: int) -> str:
    """The version of a report's inputs now: its code and one index lookup per table it reads."""
    data = data_version(INPUTS[ReportKind(kind)].tables, VersionContext(municipality_id=municipality_id, user_id=0))
    return f"{_code_version(kind)}:{data}"


# --- parameters ------------------------------------------------------------------------------------

def fiscal_year_key(year: int) -> str:
    return str(year)


def corporations_key(*, municipality_id: int, campaign_id: int | None, fiscal_year: int | None) -> str:
    """The key of a per-corporation report; a campaign of another municipality (or none) is NotFound,
    checked before any stored result is read."""
    if (campaign_id is None) == (fiscal_year is None):
        raise ValueError("give exactly one of campaign_id and fiscal_year")
    if campaign_id is not None:
        if not Campaign.objects.filter(municipality_id=municipality_id, pk=campaign_id).exists():
            raise NotFound("No such campaign.")
        return f"campaign:{campaign_id}"
    return f"fiscal_year:{fiscal_year}"


def _as_stored(kind: str, report: dict[str, Any]) -> str:
    """The report as the API writes it, checked against its response schema once, here: reads then
    answer the stored text without validating it again (at 3,000 自治会 that is most of a read).
    Written as computed, not as the schema dumps it: the exports' columns follow the keys' order."""
    schema = FiscalYearReport if kind == ReportKind.FISCAL_YEAR else CorporationReport
    schema.model_validate(report)
    return renderers.dumps(report).decode()


def _compute(kind: str, municipality_id: int, key: str) -> dict[str, Any]:
    if kind == ReportKind.FISCAL_YEAR:
        return fiscal.fiscal_year_report(municipality_id=municipality_id, year=int(key))
    scope, value = key.split(":")
    if scope == "campaign":
        return corporations.corporation_report(municipality_id=municipality_id, campaign_id=int(value))
    return corporations.corporation_report(municipality_id=municipality_id, fiscal_year=int(value))


# --- computing ------------------------------------------------------------------------------------

def refresh_report(kind: str, municipality_id: int, key: str) -> ReportSnapshot:
    """The stored report for the current version, computed now unless it already is. One refresh of
    a report at a time: a second waits, then finds the first's result (or computes from newer data).
    The version is read before the aggregate: a write during it makes the next read find it stale,
    never the reverse."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                           [f"reports.snapshot:{municipality_id}:{kind}:{key}"])
        version = current_version(kind, municipality_id)
        stored = ReportSnapshot.objects.filter(municipality_id=municipality_id, kind=kind, key=key).first()
        if stored is not None and stored.version == version:
            return stored
        started = time.perf_counter()
        result = _as_stored(kind, _compute(kind, municipality_id, key))
        duration_ms = round((time.perf_counter() - started) * 1000)
        snapshot, _created = ReportSnapshot.objects.update_or_create(
            municipality_id=municipality_id, kind=kind, key=key,
            defaults={"version": version, "computed_at": timezone.now(), "duration_ms": duration_ms, "result": result},
        )
    logger.info("report %s %s of municipality %s computed in %s ms", kind, key, municipality_id, duration_ms)
    return snapshot


# As ninja answers with the API's renderer (api.renderers).
CONTENT_TYPE = "application/json; charset=utf-8"


@dataclass(frozen=True)
class Served:
    text: str  # the stored report (JSON)
    as_of: dt.datetime
    stale: bool
    refreshing: bool

    def fields(self) -> dict[str, Any]:
        """The freshness fields every report's answer carries."""
        return {"as_of": self.as_of, "stale": self.stale, "refreshing": self.refreshing}

    def result(self) -> dict[str, Any]:
        return orjson.loads(self.text)

    def response(self, report: dict[str, Any] | None = None) -> HttpResponse:
        """The answer: `report` (the stored one, changed) or the stored text as it is, with the
        freshness fields added to the object."""
        if report is not None:
            return HttpResponse(renderers.dumps({**report, **self.fields()}), content_type=CONTENT_TYPE)
        fields = renderers.dumps(self.fields())
        return HttpResponse(self.text.encode()[:-1] + b"," + fields[1:], content_type=CONTENT_TYPE)


def read_report(kind: str, municipality_id: int, key: str) -> Served:
    """A report for a reader: stored, refreshed behind when its inputs changed (module docstring)."""
    version = current_version(kind, municipality_id)
    snapshot = ReportSnapshot.objects.filter(municipality_id=municipality_id, kind=kind, key=key).first()
    if snapshot is None:
        snapshot = refresh_report(kind, municipality_id, key)
    elif snapshot.version != version and claim_refresh(ReportSnapshot.objects.filter(pk=snapshot.pk), version):
        from django_q.tasks import async_task

        async_task("reports.tasks.refresh_report_task", kind, municipality_id, key, group="reports-snapshot")
        snapshot.refresh_from_db()
    stale = snapshot.version != version
    return Served(text=snapshot.result, as_of=snapshot.computed_at, stale=stale,
                  refreshing=stale and snapshot.requested_version == version)


def fresh_report(kind: str, municipality_id: int, key: str) -> dict[str, Any]:
    """A report of the data as it is now (exports, which run as jobs): the stored one when current."""
    return orjson.loads(refresh_report(kind, municipality_id, key).result)


# --- the reports, as their readers get them ---------------------------------------------------------

def fiscal_year_response(*, municipality_id: int, year: int, public: bool) -> HttpResponse:
    """The 年度 report's answer; the public one has its small cells suppressed on the way out."""
    served = read_report(ReportKind.FISCAL_YEAR, municipality_id, fiscal_year_key(year))
    return served.response(fiscal.published(served.result(), public=True) if public else None)


def corporation_response(*, municipality_id: int, campaign_id: int | None, fiscal_year: int | None) -> HttpResponse:
    key = corporations_key(municipality_id=municipality_id, campaign_id=campaign_id, fiscal_year=fiscal_year)
    return read_report(ReportKind.CORPORATIONS, municipality_id, key).response()
