"""Exports: a report or a list written to a file by a background job, for Excel on a municipal PC.

This module asks and runs (request_export, run_export, expire_exports) and reads the lists; the
files are written by reports.export_writers (CSV in UTF-8 with BOM or CP932, XLSX).

- The reports are built by their own modules (reports.fiscal, reports.corporations: one
  implementation of each number) and written as their tables.
- The lists are read with a server-side cursor (QuerySet.iterator), never held in memory, and carry
  no free text (notes, descriptions, case titles, names of residents: 要配慮個人情報 stays out).

A job writes to a temporary name beside its file and renames it when complete, so a failed job
leaves no partial file; it is written to the audit log (action "export") when it finishes, and
again on every download (reports.exports_api)."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from accounts.access import municipality_id_of
from accounts.models import User
from audit.models import AuditEvent
from audit.services import record_access
from backend.dates import fiscal_year_bounds
from backend.errors import InvalidInput, NotFound, TsunaguError
from backend.vocabulary import CONCERN_CATEGORIES
from reports import access
from reports.export_writers import CHUNK_ROWS, Document, write_csv, write_xlsx
from reports.fiscal import require_plausible_fiscal_year, wareki_fiscal_year
from reports.models import ExportEncoding, ExportFormat, ExportJob, ExportKind, ExportStatus
from reports.tables import Table

logger = logging.getLogger("tsunagu.exports")

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
REPORT_KINDS = frozenset({ExportKind.FISCAL_YEAR_REPORT, ExportKind.CORPORATION_REPORT})
LIST_KINDS = frozenset({ExportKind.VISITS, ExportKind.CONCERNS, ExportKind.CASES})
# ASCII names for the download's fallback filename (old browsers, some mail gateways).
_ASCII_KIND = {
    ExportKind.FISCAL_YEAR_REPORT: "fiscal_year_report", ExportKind.CORPORATION_REPORT: "corporation_report",
    ExportKind.VISITS: "visits", ExportKind.CONCERNS: "concerns", ExportKind.CASES: "cases",
}


class Gone(TsunaguError):
    """The export's file has expired and was deleted: ask for a new export."""

    status = 410
    code = "export_expired"
    default_message = "This export has expired; request it again."


# --- requesting an export ------------------------------------------------------------------------


def request_export(
    *, user: User, kind: str, format: str, encoding: str | None = None, public: bool = False,
    fiscal_year: int | None = None, campaign_id: int | None = None,
) -> ExportJob:
    """Check who asks for what (403 / 404 / 422, nothing written), record the job and queue it."""
    access.require_export(user, kind)
    public = access.export_is_public(user, kind, public)
    params = _checked_params(user, kind, fiscal_year, campaign_id)
    fmt = ExportFormat(format)
    job = ExportJob(
        municipality_id=municipality_id_of(user), requested_by=user, kind=kind, format=fmt,
        encoding=(encoding or ExportEncoding.UTF8_SIG) if fmt == ExportFormat.CSV else "",
        public=public, params=params, filename=download_name(kind, fmt, public, params),
        expires_at=timezone.now() + dt.timedelta(hours=settings.EXPORTS_EXPIRE_HOURS),
    )
    with transaction.atomic():
        job.save(force_insert=True)
        from django_q.tasks import async_task

        transaction.on_commit(lambda: async_task(
            "reports.tasks.run_export_task", str(job.pk), job.municipality_id, task_name=f"export-{job.pk}"
        ))
    return job


def _checked_params(user: User, kind: str, fiscal_year: int | None, campaign_id: int | None) -> dict[str, Any]:
    """What the kind needs: a 年度 for the 年度 report and the lists, a campaign or a 年度 (one of
    them) for the per-corporation report. A campaign must be one the user sees (404 otherwise)."""
    if fiscal_year is not None:
        require_plausible_fiscal_year(fiscal_year, ["body", "fiscal_year"])
    if kind == ExportKind.CORPORATION_REPORT:
        if (fiscal_year is None) == (campaign_id is None):
            raise InvalidInput(
                "The per-corporation report takes either a campaign or a fiscal_year.",
                details=[{"loc": ["body", "campaign"]}, {"loc": ["body", "fiscal_year"]}],
            )
        if campaign_id is not None:
            from visits.access import visible_campaigns

            campaign = visible_campaigns(user).filter(pk=campaign_id).only("fiscal_year", "name").first()
            if campaign is None:
                raise NotFound("No such campaign.", details=[{"loc": ["body", "campaign"]}])
            return {"campaign": campaign.pk, "fiscal_year": campaign.fiscal_year, "campaign_name": campaign.name}
        return {"campaign": None, "fiscal_year": fiscal_year}
    if campaign_id is not None:
        raise InvalidInput("campaign: only the per-corporation report takes a campaign.",
                           details=[{"loc": ["body", "campaign"]}])
    if fiscal_year is None:
        raise InvalidInput(f"fiscal_year: {ExportKind(kind).label} needs a 年度.",
                           details=[{"loc": ["body", "fiscal_year"]}])
    return {"campaign": None, "fiscal_year": fiscal_year}


_UNSAFE_IN_FILENAMES = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f\s]+')


def download_name(kind: str, fmt: str, public: bool, params: dict[str, Any]) -> str:
    """令和7年度_訪問一覧.csv, 令和7年度_年度報告_公開用.xlsx, 令和7年度_法人別報告_<campaign>.csv."""
    parts = [wareki_fiscal_year(params["fiscal_year"]), ExportKind(kind).label]
    if params.get("campaign_name"):
        parts.append(_UNSAFE_IN_FILENAMES.sub("_", params["campaign_name"]).strip("._")[:40])
    if public:
        parts.append("公開用")
    return "_".join(p for p in parts if p) + f".{fmt}"


def ascii_name(job: ExportJob) -> str:
    """The fallback filename for clients that do not read RFC 5987: FY2025_visits.csv."""
    campaign = job.params.get("campaign")
    stem = f"FY{job.params.get('fiscal_year')}" + (f"_campaign{campaign}" if campaign else "")
    return f"{stem}_{_ASCII_KIND[ExportKind(job.kind)]}{'_public' if job.public else ''}.{job.format}"


def media_type(job: ExportJob) -> str:
    if job.format == ExportFormat.XLSX:
        return XLSX_MEDIA_TYPE
    return "text/csv; charset=Shift_JIS" if job.encoding == ExportEncoding.CP932 else "text/csv; charset=utf-8"


def file_path(job: ExportJob) -> Path:
    return Path(settings.EXPORTS_ROOT) / job.file


def is_expired(job: ExportJob, now: dt.datetime | None = None) -> bool:
    return job.status == ExportStatus.EXPIRED or job.expires_at <= (now or timezone.now())


# --- running an export (the job) -----------------------------------------------------------------


def run_export(job_id: str) -> dict[str, Any]:
    """Write one export (in its municipality's scope: reports.tasks). Safe to run twice: only a
    queued job starts."""
    now = timezone.now()
    if not ExportJob.objects.filter(pk=job_id, status=ExportStatus.QUEUED).update(
        status=ExportStatus.RUNNING, started_at=now
    ):
        return {"skipped": True}
    job = ExportJob.objects.select_related("requested_by").get(pk=job_id)
    relative = f"{job.municipality_id}/{job.pk}.{job.format}"
    target = Path(settings.EXPORTS_ROOT) / relative
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        document = build_document(job)
        target.parent.mkdir(parents=True, exist_ok=True)
        progress = _progress_updater(job, document.total)
        if job.format == ExportFormat.XLSX:
            written = write_xlsx(partial, document, on_rows=progress)
        else:
            written = write_csv(partial, document, encoding=job.encoding, on_rows=progress)
        os.replace(partial, target)
    except Exception as exc:
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            partial.unlink()
        _fail(job, exc)
        return {"status": ExportStatus.FAILED}
    finished = timezone.now()
    job.status, job.progress, job.rows, job.replaced_characters = ExportStatus.DONE, 100, written.rows, written.replaced
    job.size_bytes, job.file, job.finished_at = target.stat().st_size, relative, finished
    job.expires_at = finished + dt.timedelta(hours=settings.EXPORTS_EXPIRE_HOURS)
    job.save(update_fields=["status", "progress", "rows", "replaced_characters", "size_bytes", "file",
                            "finished_at", "expires_at"])
    record_access(
        actor=job.requested_by, object_type="reports.exportjob", object_id=job.pk,
        basis=access.export_basis(job.requested_by), action=AuditEvent.Action.EXPORT,
        detail={"event": "written", **audit_detail(job)},
    )
    return {"status": job.status, "rows": job.rows, "size_bytes": job.size_bytes}


def audit_detail(job: ExportJob) -> dict[str, Any]:
    return {
        "kind": job.kind, "format": job.format, "encoding": job.encoding, "public": job.public,
        "params": job.params, "rows": job.rows, "replaced_characters": job.replaced_characters,
    }


def _progress_updater(job: ExportJob, total: int) -> Callable[[int], None]:
    last = [0]

    def update(rows: int) -> None:
        percent = min(99, rows * 100 // total) if total else 99
        if percent > last[0]:
            last[0] = percent
            ExportJob.objects.filter(pk=job.pk).update(progress=percent)

    return update


def _fail(job: ExportJob, exc: Exception) -> None:
    if isinstance(exc, TsunaguError):
        message = exc.message
    else:
        error_id = uuid.uuid4().hex[:12]
        logger.exception("export %s (%s) failed: error %s", job.pk, job.kind, error_id)
        message = f"出力に失敗しました（エラーID: {error_id}）。"
    ExportJob.objects.filter(pk=job.pk).update(
        status=ExportStatus.FAILED, error=message[:300], finished_at=timezone.now(), file=""
    )


def build_document(job: ExportJob) -> Document:
    """The heading and tables of a job's kind. The reports are built by their own modules (one
    implementation of each number); the lists are read here."""
    year = job.params["fiscal_year"]
    label = wareki_fiscal_year(year)
    kind = ExportKind(job.kind)
    if kind in LIST_KINDS:
        table, total = LISTS[kind](job.municipality_id, year)
        return Document(heading=[], tables=[Table(f"{label} {table.title}", table.headers, table.rows)],
                        total=total)
    tables, total = [], 0
    for t in _report_tables(job):
        rows = list(t.rows)
        tables.append(Table(t.title, t.headers, rows))
        total += len(rows)
    heading = [f"{label} {kind.label}"]
    if job.params.get("campaign_name"):
        heading.append(f"世帯訪問調査: {job.params['campaign_name']}")
    if job.public:
        heading.append(f"公開用: {settings.REPORTS_SMALL_CELL_THRESHOLD}未満の値は秘匿（空欄）")
    heading.append(f"作成日時: {timezone.localtime():%Y-%m-%d %H:%M}")
    return Document(heading=heading, tables=tables, total=total)


def _report_tables(job: ExportJob) -> list[Table]:
    """The report's tables, from the stored report when it is current (reports.snapshots)."""
    from reports import snapshots
    from reports.models import ReportKind

    if job.kind == ExportKind.FISCAL_YEAR_REPORT:
        from reports.fiscal import fiscal_year_tables, published

        report = snapshots.fresh_report(ReportKind.FISCAL_YEAR, job.municipality_id,
                                        snapshots.fiscal_year_key(job.params["fiscal_year"]))
        return fiscal_year_tables(published(report, public=job.public))
    from reports.corporations import corporation_tables

    key = snapshots.corporations_key(municipality_id=job.municipality_id, campaign_id=job.params.get("campaign") or None,
                                     fiscal_year=None if job.params.get("campaign") else job.params["fiscal_year"])
    return corporation_tables(snapshots.fresh_report(ReportKind.CORPORATIONS, job.municipality_id, key))


# --- expiry --------------------------------------------------------------------------------------


def expire_exports(*, now: dt.datetime | None = None) -> int:
    """Delete the files of this municipality's exports past their time and mark them expired (run
    in the municipality's scope: reports.tasks.expire_exports_task)."""
    now = now or timezone.now()
    due = ExportJob.objects.filter(
        expires_at__lte=now, status__in=[ExportStatus.DONE, ExportStatus.FAILED, ExportStatus.QUEUED]
    )
    expired = 0
    for job in due.only("pk", "file", "status"):
        if job.file:
            file_path(job).unlink(missing_ok=True)
        expired += ExportJob.objects.filter(pk=job.pk, status=job.status).update(status=ExportStatus.EXPIRED, file="")
    return expired


# --- the lists -----------------------------------------------------------------------------------


def _year_window(year: int) -> tuple[dt.datetime, dt.datetime]:
    """The 年度 as times: from 1 April 00:00 to the next 1 April 00:00, Asia/Tokyo."""
    first, last = fiscal_year_bounds(year)
    tz = timezone.get_default_timezone()
    return (dt.datetime.combine(first, dt.time(0), tzinfo=tz),
            dt.datetime.combine(last + dt.timedelta(days=1), dt.time(0), tzinfo=tz))


def _stream(queryset: Any, row: Callable[[tuple], Sequence[Any]]) -> Iterator[Sequence[Any]]:
    for values in queryset.iterator(chunk_size=CHUNK_ROWS):
        yield row(values)


VISIT_HEADERS = ["訪問日時", "自治会コード", "自治会名", "世帯番号", "法人", "訪問員", "結果", "訂正済"]


def visits_table(municipality_id: int, year: int) -> tuple[Table, int]:
    """訪問一覧: the visit records that stand (a corrected record appears once, as its correction:
    訂正済 marks a record that replaced an earlier one), by visit time in Asia/Tokyo."""
    from visits.models import VisitOutcome, VisitRecord

    start, end = _year_window(year)
    # NOT EXISTS, not a LEFT JOIN … IS NULL: the planner estimates the anti-join well, and a
    # cursor's plan (optimised for its first rows) stays a sound one.
    corrected = VisitRecord.objects.filter(supersedes_id=OuterRef("pk"))
    records = VisitRecord.objects.filter(
        municipality_id=municipality_id, visited_at__gte=start, visited_at__lt=end
    ).filter(~Exists(corrected))
    outcomes = dict(VisitOutcome.choices)
    rows = records.order_by("visited_at", "id").values_list(
        "visited_at", "household__neighborhood__code", "household__neighborhood__name", "household__external_id",
        "worker__partner_organization__name", "worker__display_name", "worker__username", "outcome", "supersedes_id",
    )

    def row(v: tuple) -> Sequence[Any]:
        return (v[0], v[1], v[2], v[3], v[4], v[5] or v[6], outcomes.get(v[7], v[7]),
                "訂正" if v[8] else "")

    return Table("訪問一覧", VISIT_HEADERS, _stream(rows, row)), records.count()


CONCERN_HEADERS = ["受付日", "経路", "分類", "緊急度", "状態", "つなぎ先", "自治会"]


def concerns_table(municipality_id: int, year: int) -> tuple[Table, int]:
    """気づき一覧: the concerns raised in the 年度 (by the day they were registered, Asia/Tokyo),
    without their description or the person they are about."""
    from outreach.models import Concern, ConcernSource, ConcernStatus, ConcernUrgency, Counter

    start, end = _year_window(year)
    concerns = Concern.objects.filter(municipality_id=municipality_id, created_at__gte=start, created_at__lt=end)
    tz = timezone.get_default_timezone()
    sources, urgencies = dict(ConcernSource.choices), dict(ConcernUrgency.choices)
    statuses, counters = dict(ConcernStatus.choices), dict(Counter.choices)
    rows = concerns.order_by("created_at", "id").values_list(
        "created_at", "source", "categories", "urgency", "status", "referred_to", "neighborhood__name"
    )

    def row(v: tuple) -> Sequence[Any]:
        return (v[0].astimezone(tz).date(), sources.get(v[1], v[1]),
                "・".join(CONCERN_CATEGORIES.get(c, c) for c in v[2]), urgencies.get(v[3], v[3]),
                statuses.get(v[4], v[4]), counters.get(v[5], v[5]), v[6])

    return Table("気づき一覧", CONCERN_HEADERS, _stream(rows, row)), concerns.count()


CASE_HEADERS = ["開始日", "状態", "段階", "同意", "同意日", "終結日", "終結理由", "主担当法人", "自治会",
                "最終接触日", "次回予定日"]


def cases_table(municipality_id: int, year: int) -> tuple[Table, int]:
    """継続的支援一覧: the cases open on any day of the 年度 (opened on or before its last day, not
    closed before its first), without their title or notes."""
    from outreach.models import CaseClosureReason, CaseConsent, CaseStage, CaseStatus, OutreachCase

    first, last = fiscal_year_bounds(year)
    cases = OutreachCase.objects.filter(municipality_id=municipality_id, opened_on__lte=last).filter(
        Q(closed_on__isnull=True) | Q(closed_on__gte=first)
    )
    statuses, stages = dict(CaseStatus.choices), dict(CaseStage.choices)
    consents, reasons = dict(CaseConsent.choices), dict(CaseClosureReason.choices)
    rows = cases.order_by("opened_on", "id").values_list(
        "opened_on", "status", "stage", "consent", "consent_date", "closed_on", "closure_reason",
        "lead_partner__name", "household__neighborhood__name", "last_contact_on", "next_contact_due",
    )

    def row(v: tuple) -> Sequence[Any]:
        return (v[0], statuses.get(v[1], v[1]), stages.get(v[2], v[2]), consents.get(v[3], v[3]), v[4], v[5],
                reasons.get(v[6], v[6]), v[7], v[8], v[9], v[10])

    return Table("継続的支援一覧", CASE_HEADERS, _stream(rows, row)), cases.count()


LISTS: dict[ExportKind, Callable[[int, int], tuple[Table, int]]] = {
    ExportKind.VISITS: visits_table, ExportKind.CONCERNS: concerns_table, ExportKind.CASES: cases_table,
}
