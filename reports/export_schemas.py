"""Export jobs in and out (reports.exports_api)."""

import datetime as dt
from uuid import UUID

from django.urls import reverse
from ninja import Field, Schema

from api.schemas import BodySchema, Id
from reports.exports import is_expired
from reports.fiscal import EARLIEST_FISCAL_YEAR
from reports.models import ExportEncoding, ExportFormat, ExportJob, ExportKind, ExportStatus


class ExportJobIn(BodySchema):
    kind: ExportKind
    format: ExportFormat
    encoding: ExportEncoding | None = Field(
        ExportEncoding.UTF8_SIG,
        description="CSV only (ignored for XLSX): UTF-8 with BOM (also when null), or CP932 (Shift_JIS)",
    )
    public: bool = Field(False, description="Small cells suppressed (reports); a supervisor's export always is")
    fiscal_year: int | None = Field(
        None, ge=EARLIEST_FISCAL_YEAR, le=2100,
        description=f"年度 (April–March), from {EARLIEST_FISCAL_YEAR} to the current 年度 + 1. Required for the "
                    "年度 report and the lists; the per-corporation report takes it or a campaign.",
    )
    campaign: Id | None = Field(None, description="The per-corporation report of one 世帯訪問調査 (instead of a 年度)")


class ExportJobOut(Schema):
    id: UUID
    kind: ExportKind
    format: ExportFormat
    encoding: ExportEncoding | None = Field(..., description="null for XLSX")
    public: bool
    status: ExportStatus
    progress: int = Field(..., description="0–100")
    rows: int
    size_bytes: int
    replaced_characters: int = Field(..., description="CP932: characters it cannot hold, written as 〓")
    filename: str
    created_at: dt.datetime
    expires_at: dt.datetime
    error: str | None
    download: str | None = Field(..., description="The file's API path once done, else null")

    @staticmethod
    def resolve_status(obj: ExportJob) -> str:
        # Past its time but not swept yet: already expired for its reader.
        return ExportStatus.EXPIRED if obj.status == ExportStatus.DONE and is_expired(obj) else obj.status

    @staticmethod
    def resolve_encoding(obj: ExportJob) -> str | None:
        return obj.encoding or None

    @staticmethod
    def resolve_error(obj: ExportJob) -> str | None:
        return obj.error or None

    @staticmethod
    def resolve_download(obj: ExportJob) -> str | None:
        if obj.status != ExportStatus.DONE or is_expired(obj):
            return None
        return reverse("api-v1:export_file", kwargs={"job_id": obj.pk})
