"""Visit photos (写真): receiving an upload from a tablet, the background job that rebuilds it without
metadata, and where the files live. Image checking itself is visits/photos/images.py; this module adds the
database rows, the files and the access rules.

Files, all under ``settings.MEDIA_ROOT``, which no URL serves (images go out through the API only):

- ``incoming/<photo_id>.<sha256>.upload``: the raw upload (with its EXIF and GPS) until the job has
  rebuilt it; the job deletes it whether it succeeds or fails. Named by id *and* hash, so a retry of
  the same upload writes the same file, never a second one.
- ``photos/<municipality_id>/<photo_id>/{original,resized,thumbnail}.jpg``: rebuilt JPEGs with no
  metadata at all. Every file is written under a temporary name and renamed into place, so a crash
  leaves either the whole file or none.

The photo id is made by the device and is the primary key: two uploads of the same id (a retry, or
two at once) meet the unique index, not a read-then-write race. Same bytes → the existing photo;
other bytes → 409 ``photo_id_reused``.
"""

from __future__ import annotations

import io
import logging
import os
import tempfile
from pathlib import Path
from typing import Final
from uuid import UUID

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone
from PIL import Image

from accounts.access import is_read_only, municipality_id_of
from accounts.models import User
from backend.errors import Conflict, Forbidden, InvalidInput
from neighborhoods.access import residents_basis
from visits import access
from visits.models import Photo, VisitRecord
from visits.photos.images import (
    DEFAULT_MAX_BYTES,
    RESIZED_LONG_EDGE,
    THUMBNAIL_LONG_EDGE,
    PhotoRejected,
    check_upload,
    clean_image,
    make_variant,
    sha256_hex,
)

logger = logging.getLogger("tsunagu.photos")

VARIANTS: Final = ("original", "resized", "thumbnail")
VARIANT_LONG_EDGE: Final = {"resized": RESIZED_LONG_EDGE, "thumbnail": THUMBNAIL_LONG_EDGE}
# Stored in Photo.error when the raw upload vanished before the job could read it. Unlike a refused
# image, this is repaired by sending the same bytes again.
UPLOAD_LOST: Final = "The uploaded file was lost before it could be processed; send the photo again."
_ERROR_MAX: Final = 300  # Photo.error's max_length


# --------------------------------------------------------------------------------------------------
# Limits and paths


def max_upload_bytes() -> int:
    """The largest upload accepted: ``settings.PHOTO_MAX_BYTES`` when defined, else 15 MiB. The API
    reads photo bodies itself, so Django's DATA_UPLOAD_MAX_MEMORY_SIZE (meant for JSON) does not cap it."""
    return int(getattr(settings, "PHOTO_MAX_BYTES", DEFAULT_MAX_BYTES))


def too_large(limit: int, size: int | None = None) -> PhotoRejected:
    mib = f" ({limit / (1024 * 1024):.4g} MiB)" if limit >= 1024 * 1024 else ""
    if size is None:
        message = f"The photo is larger than the limit of {limit} bytes{mib}."
        return PhotoRejected("too_large", message, max_bytes=limit)
    message = f"The photo is {size} bytes; the limit is {limit} bytes{mib}."
    return PhotoRejected("too_large", message, size=size, max_bytes=limit)


def _media_root() -> Path:
    return Path(str(settings.MEDIA_ROOT))


def incoming_path(photo_id: UUID | str, sha256: str) -> Path:
    return _media_root() / "incoming" / f"{UUID(str(photo_id))}.{sha256}.upload"


def photo_dir(photo: Photo) -> Path:
    return _media_root() / "photos" / str(photo.municipality_id) / str(photo.pk)


def variant_path(photo: Photo, variant: str) -> Path:
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}")
    return photo_dir(photo) / f"{variant}.jpg"


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory and a rename: readers
    and crashes see the old file or the whole new one, never a part. The file is private (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _discard(path: Path) -> None:
    path.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------------
# Access


def visible_visits(user: User) -> QuerySet[VisitRecord]:
    """Visit records of the user's municipality whose household the user may see."""
    return access.visible_visit_records(user)


def visible_photos(user: User) -> QuerySet[Photo]:
    """Photos of the visit records the user may see (access.visible_visit_records decides)."""
    return Photo.objects.filter(
        municipality_id=municipality_id_of(user), visit_record__in=access.visible_visit_records(user).values("pk")
    )


def read_basis(user: User) -> str:
    """Why this user may look at a photo of a household: written to the audit log with each read."""
    return residents_basis(user)


def require_uploader(user: User) -> None:
    if is_read_only(user):
        raise Forbidden("Supervisors have read-only access and cannot upload photos.")


def attachable_visit(user: User, visit_id: UUID) -> VisitRecord:
    """The visit a photo is sent for. One the user may not see answers like one that does not exist
    (422 ``visit_unknown``); one they see but did not record is 403 (see access.may_attach_photo)."""
    visit = visible_visits(user).filter(pk=visit_id).only("pk", "municipality_id", "worker_id").first()
    if visit is None:
        raise InvalidInput(
            "There is no visit with this id that you may add photos to.", code="visit_unknown",
            details={"visit_id": str(visit_id)},
        )
    if not access.may_attach_photo(user, visit):
        raise Forbidden("Only the worker who recorded this visit, or a coordinator, adds its photos.")
    return visit


# --------------------------------------------------------------------------------------------------
# Receiving an upload


def receive_photo(*, user: User, photo_id: UUID, visit_id: UUID, data: bytes) -> tuple[Photo, bool]:
    """Accept the bytes of a photo taken at ``visit_id``. Returns the photo and whether it was
    created now (``False``: the same bytes had already been received under this id).

    The image is checked here, synchronously, so a bad file is refused at once; the raw bytes are
    kept only in the private incoming folder, and the rebuild is queued once the row is committed.
    Raises PhotoRejected (413/422), InvalidInput ``visit_unknown`` (422: the same answer whether the
    visit does not exist or belongs to someone the user may not see), Conflict ``photo_id_reused``."""
    require_uploader(user)
    limit = max_upload_bytes()
    if len(data) > limit:
        raise too_large(limit, len(data))
    visit = attachable_visit(user, visit_id)
    digest = sha256_hex(data)

    existing = _existing_photo(photo_id)
    if existing is not None:
        return _received_again(existing, visit=visit, digest=digest, data=data), False

    info = check_upload(data, max_bytes=limit)
    raw_path = incoming_path(photo_id, digest)
    wrote = False
    try:
        with transaction.atomic():
            # The row first: a concurrent upload of the same id waits here on the primary key and
            # then fails, so only the winner ever writes the incoming file.
            photo = Photo.objects.create(
                id=photo_id, municipality_id=visit.municipality_id, visit_record=visit, uploaded_by=user,
                sha256=digest, size_bytes=len(data), source_format=info.format,
            )
            _write_atomically(raw_path, data)
            wrote = True
            _queue_processing(photo.pk, photo.municipality_id)
    except IntegrityError as exc:
        if wrote:  # a deferred constraint failed at commit: the row is gone, so are the bytes
            _discard(raw_path)
        existing = _existing_photo(photo_id)
        if existing is None:
            if not _is_primary_key_violation(exc):  # not the id after all
                raise
            # Taken in another municipality (row-level security hides the row): told like any reuse.
            raise Conflict(
                "This photo id was already used for other content; a new photo needs a new id.",
                code="photo_id_reused", details={"photo_id": str(photo_id)},
            ) from None
        return _received_again(existing, visit=visit, digest=digest, data=data), False
    except BaseException:
        if wrote:  # the row was rolled back: no raw bytes without a row
            _discard(raw_path)
        raise
    return photo, True


def _is_primary_key_violation(exc: IntegrityError) -> bool:
    diag = getattr(exc.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None) == f"{Photo._meta.db_table}_pkey"


def _existing_photo(photo_id: UUID) -> Photo | None:
    return Photo.objects.filter(pk=photo_id).first()


def _received_again(existing: Photo, *, visit: VisitRecord, digest: str, data: bytes) -> Photo:
    """A second upload under an id that is taken: the same bytes for the same visit are a retry (and
    repair a raw upload that was lost before processing); anything else is a reused id. Nothing about
    the existing photo is told, since it may belong to a visit the caller cannot see."""
    if existing.sha256 != digest or existing.visit_record_id != visit.pk:
        raise Conflict(
            "This photo id was already used for other content; a new photo needs a new id.",
            code="photo_id_reused", details={"photo_id": str(existing.pk)},
        )
    with transaction.atomic():
        photo = Photo.objects.select_for_update().get(pk=existing.pk)
        raw_path = incoming_path(photo.pk, photo.sha256)
        lost = photo.status == Photo.Status.RECEIVED or (
            photo.status == Photo.Status.FAILED and photo.error == UPLOAD_LOST
        )
        if lost and not raw_path.exists():
            logger.warning("photo %s: raw upload was missing; stored again from a retry", photo.pk)
            _write_atomically(raw_path, data)
            if photo.status != Photo.Status.RECEIVED:
                photo.status, photo.error, photo.processed_at = Photo.Status.RECEIVED, "", None
                photo.save(update_fields=["status", "error", "processed_at"])
            _queue_processing(photo.pk, photo.municipality_id)
    return photo


def _queue_processing(photo_id: UUID, municipality_id: int) -> None:
    from django_q.tasks import async_task

    transaction.on_commit(
        lambda: async_task(
            "visits.tasks.process_photo_task", str(photo_id), municipality_id, task_name=f"photo-{photo_id}"
        )
    )


# --------------------------------------------------------------------------------------------------
# The background job


def process_photo(photo_id: UUID | str) -> Photo | None:
    """Rebuild a received photo: the clean original (no metadata, orientation applied), a resized
    copy and a thumbnail, then mark it ready and delete the raw upload. A refused image is marked
    failed and its raw upload deleted too.

    Safe to run twice, or twice at once: a ready or failed photo is left alone, the outputs are the
    same bytes each time and are renamed into place, and the state changes only from ``received``."""
    photo = Photo.objects.filter(pk=photo_id).first()
    if photo is None:
        logger.warning("photo %s: not found; nothing to process", photo_id)
        return None
    if photo.status != Photo.Status.RECEIVED:
        return photo

    raw_path = incoming_path(photo.pk, photo.sha256)
    try:
        data = raw_path.read_bytes()
    except FileNotFoundError:
        return _fail_if_still_missing(photo.pk, raw_path)
    if sha256_hex(data) != photo.sha256:
        logger.error("photo %s: the stored upload does not match its hash; discarded", photo.pk)
        _discard(raw_path)
        return _fail_if_still_missing(photo.pk, raw_path)

    try:
        original = clean_image(data, max_bytes=max(max_upload_bytes(), len(data)))
        outputs = {"original": original}
        for variant, long_edge in VARIANT_LONG_EDGE.items():
            outputs[variant] = make_variant(original, long_edge=long_edge)
    except PhotoRejected as exc:
        logger.info("photo %s refused while processing: %s", photo.pk, exc.code)
        Photo.objects.filter(pk=photo.pk, status=Photo.Status.RECEIVED).update(
            status=Photo.Status.FAILED, error=exc.message[:_ERROR_MAX], processed_at=timezone.now()
        )
        transaction.on_commit(lambda: _discard(raw_path))
        return Photo.objects.get(pk=photo.pk)

    with Image.open(io.BytesIO(original), formats=["JPEG"]) as im:  # our own output: header only
        width, height = im.size
    for variant, content in outputs.items():
        _write_atomically(variant_path(photo, variant), content)
    Photo.objects.filter(pk=photo.pk, status=Photo.Status.RECEIVED).update(
        status=Photo.Status.READY, width=width, height=height, error="", processed_at=timezone.now()
    )
    # Only once "ready" is committed: until then a second run must still find the raw bytes.
    transaction.on_commit(lambda: _discard(raw_path))
    return Photo.objects.get(pk=photo.pk)


def _fail_if_still_missing(photo_id: UUID, raw_path: Path) -> Photo:
    """The raw upload is gone while the photo is still ``received``. Checked again under the row lock,
    because a retried upload may be putting it back right now (and has then queued another run)."""
    with transaction.atomic():
        photo = Photo.objects.select_for_update().get(pk=photo_id)
        if photo.status == Photo.Status.RECEIVED and not raw_path.exists():
            logger.error("photo %s: the raw upload is missing; marked failed until it is sent again", photo.pk)
            photo.status, photo.error, photo.processed_at = Photo.Status.FAILED, UPLOAD_LOST, timezone.now()
            photo.save(update_fields=["status", "error", "processed_at"])
    return photo
