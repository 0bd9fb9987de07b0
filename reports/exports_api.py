"""Exports (CSV / XLSX) of the reports and of the underlying lists, run as jobs (reports.exports).

POST answers 202 with the job; poll GET /exports/{id} for its progress; GET /exports/{id}/file
downloads it once done (409 before, 410 once expired). Jobs and files are their requester's alone."""

import logging
from urllib.parse import quote
from uuid import UUID

from django.http import FileResponse
from django.shortcuts import get_object_or_404
from ninja import Router, Status
from ninja.pagination import paginate

from api.auth import AuthedRequest
from api.openapi import ERROR_REF
from api.pagination import Paginated
from audit.services import record_export
from backend.errors import Conflict
from reports import access, exports
from reports.export_schemas import ExportJobIn, ExportJobOut
from reports.models import ExportJob, ExportStatus

logger = logging.getLogger("tsunagu.exports")
router = Router(tags=["exports"])

_BINARY = {"schema": {"type": "string", "format": "binary"}}
_FILE_DOC = {
    "responses": {
        200: {
            "description": "The file, as an attachment (Content-Disposition with an RFC 5987 Japanese filename)",
            "content": {"text/csv": _BINARY, exports.XLSX_MEDIA_TYPE: _BINARY},
        },
        409: {"description": "Not done yet (or failed)", "content": {"application/json": {"schema": {"$ref": ERROR_REF}}}},
        410: {"description": "Expired: request the export again",
              "content": {"application/json": {"schema": {"$ref": ERROR_REF}}}},
    }
}


@router.post(
    "", response={202: ExportJobOut}, summary="Export a report or a list (a background job)",
    description=(
        "Reports (`fiscal_year_report`, `corporation_report`): coordinators and supervisors (a supervisor's export "
        "is always `public`). Lists (`visits`, `concerns`, `cases`): coordinators only. The 年度 report and the "
        "lists need `fiscal_year`; the per-corporation report takes `campaign` or `fiscal_year`."
    ),
)
def create_export(request: AuthedRequest, payload: ExportJobIn):
    job = exports.request_export(
        user=request.auth, kind=payload.kind, format=payload.format, encoding=payload.encoding,
        public=payload.public, fiscal_year=payload.fiscal_year, campaign_id=payload.campaign,
    )
    return Status(202, job)


@router.get("", response=list[ExportJobOut], summary="My exports, newest first")
@paginate(Paginated)
def list_exports(request: AuthedRequest):
    access.require_exporter(request.auth)
    return access.visible_export_jobs(request.auth).order_by("-created_at", "-id")


@router.get("/{job_id}", response=ExportJobOut, summary="An export's status and progress")
def get_export(request: AuthedRequest, job_id: UUID):
    access.require_exporter(request.auth)
    return get_object_or_404(access.visible_export_jobs(request.auth), pk=job_id)


@router.get(
    "/{job_id}/file", url_name="export_file", summary="Download an export (audited)",
    description="409 until the export is done; 410 once it has expired. Not cached (`Cache-Control: private, no-store`).",
    openapi_extra=_FILE_DOC,
)
def download_export(request: AuthedRequest, job_id: UUID):
    access.require_exporter(request.auth)
    job = get_object_or_404(access.visible_export_jobs(request.auth), pk=job_id)
    if exports.is_expired(job):
        raise exports.Gone()
    if job.status != ExportStatus.DONE:
        if job.status == ExportStatus.FAILED:
            raise Conflict(f"The export failed: {job.error}", code="export_failed")
        raise Conflict(f"The export is not ready yet ({job.progress}%).", code="export_not_ready")
    access.require_export(request.auth, job.kind)  # the role may have changed since
    try:
        handle = exports.file_path(job).open("rb")
    except FileNotFoundError:
        logger.error("export %s is done but its file %s is missing", job.pk, job.file)
        raise exports.Gone("The export's file is no longer there; request it again.") from None
    try:
        _audit_download(request, job)
    except BaseException:
        handle.close()
        raise
    response = FileResponse(handle, content_type=exports.media_type(job))
    response["Content-Disposition"] = content_disposition(exports.ascii_name(job), job.filename)
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def content_disposition(fallback: str, filename: str) -> str:
    """An attachment with an ASCII name for old clients and the Japanese one (RFC 5987, RFC 6266)."""
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _audit_download(request: AuthedRequest, job: ExportJob) -> None:
    record_export(request, job, basis=access.export_basis(request.auth),
                  detail={"event": "downloaded", **exports.audit_detail(job)})
