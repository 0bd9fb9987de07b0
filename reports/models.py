"""Export jobs: a report or a list written to a CSV or XLSX file in the background, kept for
EXPORTS_EXPIRE_HOURS, downloaded only by the person who asked for it. Report snapshots: the reports
as last computed, served while their inputs have not changed (reports.snapshots)."""

import uuid
from typing import TypeAlias

from django.conf import settings
from django.db import models
from django.db.models import Q


class ExportKind(models.TextChoices):
    FISCAL_YEAR_REPORT = "fiscal_year_report", "年度報告"
    CORPORATION_REPORT = "corporation_report", "法人別報告"
    VISITS = "visits", "訪問一覧"
    CONCERNS = "concerns", "気づき一覧"
    CASES = "cases", "継続的支援一覧"


class ExportFormat(models.TextChoices):
    CSV = "csv", "CSV"
    XLSX = "xlsx", "Excel (XLSX)"


class ExportEncoding(models.TextChoices):
    """A CSV's encoding: UTF-8 with a byte order mark (Excel on Windows detects it) or CP932
    (Shift_JIS as Windows has it) for older tools."""

    UTF8_SIG = "utf-8-sig", "UTF-8 (BOM付き)"
    CP932 = "cp932", "Shift_JIS (CP932)"


class ExportStatus(models.TextChoices):
    QUEUED = "queued", "待機"
    RUNNING = "running", "実行中"
    DONE = "done", "完了"
    FAILED = "failed", "失敗"
    EXPIRED = "expired", "期限切れ"


class ExportJob(models.Model):
    """One export: what was asked (kind, format, parameters), by whom, and how it went."""

    Kind: TypeAlias = ExportKind
    Format: TypeAlias = ExportFormat
    Encoding: TypeAlias = ExportEncoding
    Status: TypeAlias = ExportStatus

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    municipality = models.ForeignKey("neighborhoods.Municipality", on_delete=models.PROTECT, related_name="+")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    format = models.CharField(max_length=4, choices=Format.choices)
    encoding = models.CharField(max_length=10, choices=Encoding.choices, blank=True, help_text="CSV only")
    public = models.BooleanField(default=False, help_text="Small cells suppressed (reports)")
    params = models.JSONField(default=dict, blank=True, help_text='{"fiscal_year": 2025, "campaign": null}')
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0, help_text="0–100")
    rows = models.PositiveIntegerField(default=0)
    size_bytes = models.BigIntegerField(default=0)
    replaced_characters = models.PositiveIntegerField(
        default=0, help_text="Characters CP932 cannot encode, written as 〓"
    )
    filename = models.CharField(max_length=200, help_text="The name the download gets")
    file = models.CharField(max_length=200, blank=True, help_text="Relative to EXPORTS_ROOT, once written")
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()

    class Meta:
        verbose_name = "出力ジョブ"
        verbose_name_plural = "出力ジョブ"
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["requested_by", "-created_at"], name="exportjob_requester"),
            models.Index(fields=["status", "expires_at"], name="exportjob_expiry"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(progress__lte=100), name="exportjob_progress_0_100"),
            models.CheckConstraint(
                condition=Q(format="xlsx", encoding="") | Q(format="csv", encoding__in=["utf-8-sig", "cp932"]),
                name="exportjob_encoding_for_csv_only",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.format} {self.status} {self.progress}%"


class ReportKind(models.TextChoices):
    FISCAL_YEAR = "fiscal_year", "年度報告"
    CORPORATIONS = "corporations", "法人別報告"


class ReportSnapshot(models.Model):
    """A report as last computed for one municipality and one set of parameters (reports.snapshots),
    with the version of its inputs it was computed from: a whole-year aggregate costs seconds in a
    large town, reading this row milliseconds. The result is the unsuppressed report; small cells
    are suppressed on the way out. People data (counts of residents per place), so a tenant table
    under row-level security like every other.

    `requested_version` deduplicates refreshes, as the coverage snapshot's does: a read that finds
    the inputs changed queues one refresh per version."""

    Kind: TypeAlias = ReportKind

    municipality = models.ForeignKey("neighborhoods.Municipality", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    key = models.CharField(max_length=40, help_text='The parameters: "2025", "campaign:12", "fiscal_year:2025"')
    version = models.TextField(help_text="The version of the inputs the result was computed from")
    requested_version = models.TextField(blank=True)
    requested_at = models.DateTimeField(null=True, blank=True)
    computed_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    # JSON text, not jsonb: jsonb reorders an object's keys, and the exports' columns follow them.
    result = models.TextField(help_text="The report as JSON")

    class Meta:
        verbose_name = "集計済みの報告"
        verbose_name_plural = "集計済みの報告"
        constraints = [
            models.UniqueConstraint(fields=["municipality", "kind", "key"], name="report_snapshot_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.key} @ {self.computed_at}"
