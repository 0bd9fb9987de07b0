"""Visit photos from the field tablets (SYNC.md, "Photos"), mounted at /api/v1/sync/photos.

PUT takes the raw image bytes as the body. The body is read here, in chunks, against the photo limit
(15 MiB unless settings.PHOTO_MAX_BYTES says otherwise) instead of through ``request.body``, which
Django caps at DATA_UPLOAD_MAX_MEMORY_SIZE (5 MB, meant for JSON bodies). Images are served only
through this API, never from a media URL, and every image read is written to the audit log."""

import datetime as dt
import logging
from typing import Literal
from urllib.parse import urlencode
from uuid import UUID

from django.http import FileResponse, HttpRequest, UnreadablePostError
from django.shortcuts import get_object_or_404
from django.urls import reverse
from ninja import Router, Schema, Status

from api.auth import AuthedRequest
from audit.services import record_read
from backend.errors import NotFound, TsunaguError
from visits.models import Photo
from visits.photos import service as photo_service

logger = logging.getLogger("tsunagu.photos")
router = Router(tags=["sync"])

READ_CHUNK = 64 * 1024
Variant = Literal["original", "resized", "thumbnail"]
_IMAGE_BODY = {"schema": {"type": "string", "format": "binary"}}
_UPLOAD_DOC = {
    "requestBody": {
        "required": True,
        "description": "The photo's bytes. Its format is decided by the bytes, not by Content-Type.",
        "content": {t: _IMAGE_BODY for t in ("image/jpeg", "image/png", "image/webp", "image/heic")},
    }
}
_IMAGE_DOC = {"responses": {200: {"description": "A JPEG without metadata", "content": {"image/jpeg": _IMAGE_BODY}}}}


class PhotoUrls(Schema):
    original: str
    resized: str
    thumbnail: str


class PhotoOut(Schema):
    id: UUID
    visit_id: UUID
    status: Literal["received", "ready", "failed"]
    source_format: str
    size_bytes: int
    sha256: str
    width: int | None
    height: int | None
    error: str | None
    created_at: dt.datetime
    processed_at: dt.datetime | None
    urls: PhotoUrls | None  # when ready


def _photo_out(photo: Photo) -> dict:
    urls = None
    if photo.status == Photo.Status.READY:
        base = reverse("api-v1:photo_image", kwargs={"photo_id": photo.pk})
        urls = {v: f"{base}?{urlencode({'variant': v})}" for v in photo_service.VARIANTS}
    return {
        "id": photo.pk, "visit_id": photo.visit_record_id, "status": photo.status,
        "source_format": photo.source_format, "size_bytes": photo.size_bytes, "sha256": photo.sha256,
        "width": photo.width, "height": photo.height, "error": photo.error or None,
        "created_at": photo.created_at, "processed_at": photo.processed_at, "urls": urls,
    }


def _body_stream(request: HttpRequest, declared: int | None):
    """Where the body comes from. Django's WSGI request limits its stream to Content-Length and so
    reads a chunked upload (no Content-Length) as empty; when the server has de-chunked the body and
    ends the input at its end (``wsgi.input_terminated``, as gunicorn does), read that input instead."""
    environ = getattr(request, "environ", None) or {}
    if declared is None and environ.get("wsgi.input_terminated") and "wsgi.input" in environ:
        return environ["wsgi.input"]
    return request


def read_limited_body(request: HttpRequest, limit: int) -> bytes:
    """The request body, read from the stream in chunks, refused with 413 as soon as it is known to
    be larger than ``limit``: from Content-Length before reading anything, else once more than
    ``limit`` bytes have arrived (a chunked upload, or an understated Content-Length under ASGI)."""
    declared = request.META.get("CONTENT_LENGTH")
    try:
        size = int(declared) if declared else None
    except ValueError:
        size = None
    if size is not None and size > limit:
        raise photo_service.too_large(limit, size)
    stream = _body_stream(request, size)
    body = bytearray()
    try:
        while chunk := stream.read(min(READ_CHUNK, limit + 1 - len(body))):
            body += chunk
            if len(body) > limit:
                raise photo_service.too_large(limit)
    except UnreadablePostError as exc:
        raise TsunaguError("The upload was interrupted; send the photo again.", code="upload_incomplete") from exc
    return bytes(body)


@router.put(
    "/{photo_id}",
    response={200: PhotoOut, 201: PhotoOut},
    summary="Upload a visit photo (raw image bytes as the body)",
    description=(
        "201 the first time; 200 when the same id is sent again with the same bytes; 409 "
        "`photo_id_reused` for other bytes; 413 above the size limit; 422 for anything that is not a "
        "JPEG, PNG, WebP or HEIC image, or `visit_unknown`. Processing happens in the background: "
        "poll GET /sync/photos/{photo_id}."
    ),
    openapi_extra=_UPLOAD_DOC,
)
def upload_photo(request: AuthedRequest, photo_id: UUID, visit_id: UUID):
    photo_service.require_uploader(request.auth)  # before reading megabytes for nothing
    photo_service.attachable_visit(request.auth, visit_id)
    data = read_limited_body(request, photo_service.max_upload_bytes())
    photo, created = photo_service.receive_photo(user=request.auth, photo_id=photo_id, visit_id=visit_id, data=data)
    return Status(201 if created else 200, _photo_out(photo))


@router.get("/{photo_id}", response=PhotoOut, summary="A photo's processing state")
def get_photo(request: AuthedRequest, photo_id: UUID):
    return _photo_out(get_object_or_404(photo_service.visible_photos(request.auth), pk=photo_id))


@router.get(
    "/{photo_id}/image",
    url_name="photo_image",
    summary="A processed photo as JPEG (audited)",
    description="Not cached by anyone (`Cache-Control: private, no-store`). 404 until the photo is ready.",
    openapi_extra=_IMAGE_DOC,
)
def photo_image(request: AuthedRequest, photo_id: UUID, variant: Variant = "resized"):
    photo = get_object_or_404(photo_service.visible_photos(request.auth), pk=photo_id)
    if photo.status != Photo.Status.READY:
        raise NotFound(f"The photo is not ready (status: {photo.status}).", code="photo_not_ready")
    path = photo_service.variant_path(photo, variant)
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        logger.error("photo %s is ready but %s is missing", photo.pk, path)
        raise NotFound("The image file is missing.") from None
    try:
        record_read(request, photo, basis=photo_service.read_basis(request.auth), detail={"variant": variant})
    except BaseException:
        handle.close()
        raise
    response = FileResponse(handle, content_type="image/jpeg", filename=f"{photo.pk}-{variant}.jpg")
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response
