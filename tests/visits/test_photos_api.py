"""PUT/GET /api/v1/sync/photos: uploads decided by their bytes, idempotent retries, limits, the
background rebuild without metadata, access through the visit's household, audited image reads."""

import io
import json
import random
import shutil
import struct
import subprocess
import zlib
from uuid import uuid4

import pytest
from django.test import RequestFactory
from django.utils import timezone
from PIL import Image

from accounts.roles import Role
from audit.models import AuditEvent
from tests import factories
from tests.api.test_errors import assert_error_body
from tests.conftest import ApiClient
from visits.models import Photo, VisitRecord
from visits.photos import service as photo_service
from visits.photos.api import read_limited_body
from visits.photos.images import DEFAULT_MAX_BYTES, PhotoRejected

RED, BLUE = (230, 20, 20), (20, 20, 230)
SECRET = "tsunagu-secret-marker"


# --------------------------------------------------------------------------------------------------
# Images, made in memory


@pytest.fixture(scope="module", autouse=True)
def _heif_opener():
    import pillow_heif

    pillow_heif.register_heif_opener()


def picture(size=(64, 48)) -> Image.Image:
    img = Image.new("RGB", size, BLUE)
    img.paste(RED, (0, 0, max(1, size[0] // 4), max(1, size[1] // 2)))
    return img


def encode(img: Image.Image, fmt: str, **params) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format={"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "heic": "HEIF"}.get(fmt, fmt), **params)
    return buf.getvalue()


def gps_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "Apple"  # Make
    exif[0x0110] = "iPad Pro"  # Model
    exif[0x0131] = SECRET  # Software
    exif[0x8825] = {1: "N", 2: (35.0, 41.0, 22.2), 3: "E", 4: (139.0, 41.0, 30.1), 6: 40.5}  # GPS IFD
    return exif


def jpeg_with_gps(size=(64, 48)) -> bytes:
    data = encode(picture(size), "jpeg", quality=95, exif=gps_exif())
    assert b"Exif\x00\x00" in data and SECRET.encode() in data
    return data


def bilevel_png(width: int, height: int) -> bytes:
    """A valid all-black 1-bit PNG of any size, tiny on the wire (a decompression bomb)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    row = b"\x00" * (1 + (width + 7) // 8)
    idat = zlib.compress(row * height, 9)
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n%%EndComments\nnewpath 0 0 moveto 10 10 lineto stroke\n%%EOF\n"
REFUSED = {
    "eps": lambda: EPS,
    "gif": lambda: encode(picture().convert("P"), "GIF"),
    "pdf": lambda: b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n",
    "random": lambda: random.Random(20261122).randbytes(4096),
}


# --------------------------------------------------------------------------------------------------
# Fixtures and helpers


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def visit(town) -> VisitRecord:
    return make_visit(town)


def make_visit(town, household=None) -> VisitRecord:
    return VisitRecord.objects.create(
        id=uuid4(), municipality=town.municipality, household=household or town.household,
        worker=town.users["outreach_worker"], outcome="met", visited_at=timezone.now(),
    )


@pytest.fixture
def upload(django_capture_on_commit_callbacks):
    """PUT a photo and run what was queued on commit (the job runs inline in tests)."""

    def _upload(client, photo_id, visit_id, data, *, content_type="image/jpeg", run_jobs=True):
        with django_capture_on_commit_callbacks(execute=run_jobs):
            return client.put(f"sync/photos/{photo_id}?visit_id={visit_id}", raw=data, content_type=content_type)

    return _upload


def stored_files(media) -> list[str]:
    if not media.exists():
        return []
    return sorted(str(p.relative_to(media)) for p in media.rglob("*") if p.is_file())


def assert_nothing_stored(media):
    assert Photo.objects.count() == 0
    assert stored_files(media) == []


def variant_files(photo_id) -> dict[str, bytes]:
    photo = Photo.objects.get(pk=photo_id)
    return {v: photo_service.variant_path(photo, v).read_bytes() for v in photo_service.VARIANTS}


def open_jpeg(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data), formats=["JPEG"])
    img.load()
    return img


# --------------------------------------------------------------------------------------------------
# Upload, processing, stripping


def test_a_jpeg_with_gps_is_received_then_rebuilt_without_any_metadata(town, visit, upload, media):
    client = town.client("outreach_worker")
    photo_id = uuid4()
    r = upload(client, photo_id, visit.id, jpeg_with_gps((64, 48)))
    assert r.status_code == 201, r.content
    body = r.json()
    assert (body["id"], body["visit_id"], body["status"]) == (str(photo_id), str(visit.id), "received")
    assert (body["source_format"], body["urls"], body["error"]) == ("jpeg", None, None)

    state = client.get(f"sync/photos/{photo_id}").json()
    assert state["status"] == "ready", state
    assert (state["width"], state["height"]) == (64, 48)
    assert state["processed_at"] and state["created_at"]
    assert set(state["urls"]) == {"original", "resized", "thumbnail"}
    assert state["urls"]["thumbnail"] == f"/api/v1/sync/photos/{photo_id}/image?variant=thumbnail"

    photo = Photo.objects.get(pk=photo_id)
    assert (photo.municipality_id, photo.uploaded_by_id) == (town.municipality.id, town.users["outreach_worker"].id)
    base = f"photos/{town.municipality.id}/{photo_id}"
    # the raw upload (with its GPS) is gone; only the rebuilt JPEGs remain
    assert stored_files(media) == [f"{base}/original.jpg", f"{base}/resized.jpg", f"{base}/thumbnail.jpg"]
    for name, data in variant_files(photo_id).items():
        img = open_jpeg(data)
        assert img.format == "JPEG", name
        assert len(img.getexif()) == 0, name
        assert b"Exif\x00\x00" not in data and SECRET.encode() not in data, name

    if shutil.which("exiftool") is None:
        pytest.skip("exiftool is not installed; Pillow-level checks passed")
    for name in photo_service.VARIANTS:
        path = photo_service.variant_path(photo, name)
        result = subprocess.run(["exiftool", "-j", "-G", "-a", "-u", str(path)], capture_output=True, check=True)
        (tags,) = json.loads(result.stdout)
        groups = {key.split(":", 1)[0] for key in tags if ":" in key}
        assert "EXIF" not in groups, (name, sorted(tags))
        assert groups <= {"ExifTool", "File", "JFIF", "Composite"}, (name, sorted(tags))
        assert not [key for key in tags if "GPS" in key], name
        assert SECRET not in json.dumps(tags)


def test_the_same_bytes_again_are_200_and_other_bytes_409(town, visit, upload, media):
    client = town.client("outreach_worker")
    photo_id, data = uuid4(), jpeg_with_gps()
    assert upload(client, photo_id, visit.id, data).status_code == 201
    files = stored_files(media)
    before = variant_files(photo_id)

    again = upload(client, photo_id, visit.id, data)
    assert again.status_code == 200, again.content
    assert again.json()["status"] == "ready"
    assert Photo.objects.count() == 1
    assert stored_files(media) == files
    assert variant_files(photo_id) == before

    other = upload(client, photo_id, visit.id, encode(picture((30, 30)), "jpeg"))
    assert_error_body(other, 409, "photo_id_reused")
    # the same bytes for another visit are another photo too
    assert_error_body(upload(client, photo_id, make_visit(town).id, data), 409, "photo_id_reused")
    assert Photo.objects.count() == 1
    assert Photo.objects.get(pk=photo_id).visit_record_id == visit.id
    assert stored_files(media) == files


def test_a_concurrent_upload_of_the_same_id_meets_the_primary_key(town, visit, upload, media, monkeypatch):
    """Two PUTs at once both find no photo and both insert: the loser gets the unique index and
    answers from the winner's row (200 same bytes / 409 other bytes), writing no file."""
    client = town.client("outreach_worker")
    photo_id, data = uuid4(), jpeg_with_gps()
    assert upload(client, photo_id, visit.id, data, run_jobs=False).status_code == 201
    files = stored_files(media)
    assert files == [f"incoming/{photo_id}.{Photo.objects.get().sha256}.upload"]

    calls = []

    def first_miss(pk, real=photo_service._existing_photo):
        calls.append(pk)
        return None if len(calls) % 2 else real(pk)  # the pre-check misses, the IntegrityError path finds

    monkeypatch.setattr(photo_service, "_existing_photo", first_miss)
    same = upload(client, photo_id, visit.id, data, run_jobs=False)
    assert same.status_code == 200, same.content
    assert_error_body(upload(client, photo_id, visit.id, encode(picture((30, 30)), "jpeg"), run_jobs=False), 409,
                      "photo_id_reused")
    assert len(calls) == 4
    assert Photo.objects.count() == 1
    assert stored_files(media) == files


@pytest.mark.parametrize("fmt", ["heic", "png", "webp"])
def test_heic_png_and_webp_are_accepted(town, visit, upload, fmt):
    client = town.client("outreach_worker")
    photo_id = uuid4()
    r = upload(client, photo_id, visit.id, encode(picture((40, 30)), fmt, **({"quality": 90} if fmt != "png" else {})),
               content_type=f"image/{fmt}")
    assert r.status_code == 201, r.content
    state = client.get(f"sync/photos/{photo_id}").json()
    assert (state["source_format"], state["status"], state["width"], state["height"]) == (fmt, "ready", 40, 30)
    assert open_jpeg(variant_files(photo_id)["original"]).size == (40, 30)


def test_the_bytes_decide_not_the_content_type(town, visit, upload):
    photo_id = uuid4()
    r = upload(town.client("outreach_worker"), photo_id, visit.id, encode(picture(), "png"), content_type="image/jpeg")
    assert r.status_code == 201, r.content
    assert r.json()["source_format"] == "png"
    assert Photo.objects.get(pk=photo_id).status == "ready"


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_other_files_are_refused_and_nothing_is_stored(town, visit, upload, media, name):
    r = upload(town.client("outreach_worker"), uuid4(), visit.id, REFUSED[name]())
    error = assert_error_body(r, 422, "unsupported_format")
    assert "JPEG, PNG, WebP or HEIC" in error["message"]
    assert_nothing_stored(media)


def test_a_truncated_jpeg_is_refused_as_corrupt(town, visit, upload, media):
    data = encode(picture((200, 200)), "jpeg")
    assert_error_body(upload(town.client("outreach_worker"), uuid4(), visit.id, data[: len(data) // 2]), 422,
                      "corrupt_image")
    assert_nothing_stored(media)


def test_a_decompression_bomb_is_refused(town, visit, upload, media):
    r = upload(town.client("outreach_worker"), uuid4(), visit.id, bilevel_png(8000, 8000), content_type="image/png")
    error = assert_error_body(r, 422, "decompression_bomb")
    assert "8000×8000" in error["message"]
    assert_nothing_stored(media)


# --------------------------------------------------------------------------------------------------
# Size limits


def test_too_large_is_413_with_the_limit_and_nothing_is_stored(town, visit, upload, media):
    limit = DEFAULT_MAX_BYTES
    data = jpeg_with_gps()
    data += b"\x00" * (limit + 1 - len(data))
    error = assert_error_body(upload(town.client("outreach_worker"), uuid4(), visit.id, data), 413, "too_large")
    assert str(limit) in error["message"]
    assert error["details"]["max_bytes"] == limit
    assert_nothing_stored(media)


def test_the_limit_comes_from_settings(town, visit, upload, media, settings):
    settings.PHOTO_MAX_BYTES = 10_000
    data = encode(picture((300, 300)), "png") + b"\x00" * 10_000
    error = assert_error_body(upload(town.client("outreach_worker"), uuid4(), visit.id, data), 413, "too_large")
    assert "10000 bytes" in error["message"]
    assert_nothing_stored(media)


def test_photos_may_be_larger_than_the_json_body_limit(town, visit, upload, settings):
    """Django refuses request.body above DATA_UPLOAD_MAX_MEMORY_SIZE (5 MB); photo bodies are read
    from the stream against the photo limit instead."""
    data = jpeg_with_gps()
    data += b"\x00" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1024)  # after the JPEG's end: ignored
    photo_id = uuid4()
    r = upload(town.client("outreach_worker"), photo_id, visit.id, data)
    assert r.status_code == 201, r.content
    photo = Photo.objects.get(pk=photo_id)
    assert (photo.size_bytes, photo.status) == (len(data), "ready")


def test_the_stream_is_cut_at_the_limit_even_without_content_length():
    request = RequestFactory().put("/api/v1/sync/photos/x", data=b"", content_type="image/jpeg")
    request.META.pop("CONTENT_LENGTH", None)
    request._stream = io.BytesIO(b"x" * 300_000)
    with pytest.raises(PhotoRejected) as caught:
        read_limited_body(request, 100_000)
    assert (caught.value.code, caught.value.status) == ("too_large", 413)
    assert "100000" in caught.value.message

    request._stream = io.BytesIO(b"x" * 300_000)
    assert read_limited_body(request, 300_000) == b"x" * 300_000


# --------------------------------------------------------------------------------------------------
# Access


def test_a_visit_of_another_municipality_is_unknown(town, other_town, upload, media):
    client = town.client("outreach_worker")
    foreign = upload(client, uuid4(), make_visit(other_town).id, jpeg_with_gps())
    missing = upload(client, uuid4(), uuid4(), jpeg_with_gps())
    assert_error_body(foreign, 422, "visit_unknown")
    assert_error_body(missing, 422, "visit_unknown")
    assert foreign.json()["error"]["message"] == missing.json()["error"]["message"]
    assert_nothing_stored(media)


def test_a_visit_the_uploader_may_not_see_is_unknown(town, upload, media):
    muni = town.municipality
    elsewhere = factories.neighborhood(muni)  # allocated to nobody, not the commissioner's
    hidden = make_visit(town, household=factories.household(muni, at=factories.centre(elsewhere)))
    for role in ("outreach_worker", "commissioner", "admin"):
        assert_error_body(upload(town.client(role), uuid4(), hidden.id, jpeg_with_gps()), 422, "visit_unknown")
    assert_nothing_stored(media)
    assert upload(town.client("coordinator"), uuid4(), hidden.id, jpeg_with_gps()).status_code == 201


def test_supervisors_are_read_only(town, visit, upload, media):
    assert_error_body(upload(town.client("supervisor"), uuid4(), visit.id, jpeg_with_gps()), 403, "forbidden")
    assert_nothing_stored(media)


def test_uploads_need_a_token(anon, visit, upload, media):
    assert_error_body(upload(anon, uuid4(), visit.id, jpeg_with_gps()), 401)
    assert_nothing_stored(media)


@pytest.fixture
def ready_photo(town, visit, upload):
    photo_id = uuid4()
    assert upload(town.client("outreach_worker"), photo_id, visit.id, encode(picture((2000, 1000)), "jpeg")).status_code == 201
    photo = Photo.objects.get(pk=photo_id)
    assert photo.status == "ready"
    return photo


def test_who_may_see_a_photo(town, other_town, ready_photo):
    state, image = f"sync/photos/{ready_photo.id}", f"sync/photos/{ready_photo.id}/image"
    for role in ("coordinator", "supervisor", "outreach_worker"):
        assert town.client(role).get(state).status_code == 200, role
        assert town.client(role).get(image).status_code == 200, role

    muni = town.municipality
    other_commissioner = factories.user(muni, Role.COMMISSIONER, neighborhoods=[factories.neighborhood(muni)])
    other_corporation = factories.user(muni, Role.OUTREACH_WORKER)
    # a 民生委員 follows people through concerns and 見守り, not the survey's records of their door
    strangers = [town.client("admin"), town.client("commissioner")]
    strangers += [other_town.client(role) for role in sorted(other_town.tokens)]
    strangers += [ApiClient(factories.token_for(u)) for u in (other_commissioner, other_corporation)]
    events = AuditEvent.objects.count()
    for client in strangers:
        assert_error_body(client.get(state), 404, "not_found")
        assert_error_body(client.get(image), 404, "not_found")
    assert AuditEvent.objects.count() == events


# --------------------------------------------------------------------------------------------------
# Serving the images


def test_the_image_is_served_privately_and_the_read_is_audited(town, ready_photo):
    client = town.client("supervisor")
    sizes = {}
    for variant in ("original", "resized", "thumbnail"):
        r = client.get(f"sync/photos/{ready_photo.id}/image?variant={variant}")
        assert r.status_code == 200, r.content
        assert r["Content-Type"] == "image/jpeg"
        assert "no-store" in r["Cache-Control"] and "private" in r["Cache-Control"]
        assert r["X-Content-Type-Options"] == "nosniff"
        data = b"".join(r.streaming_content)  # consuming it closes the file
        sizes[variant] = open_jpeg(data).size
    assert sizes == {"original": (2000, 1000), "resized": (1600, 800), "thumbnail": (320, 160)}

    events = list(AuditEvent.objects.filter(object_type="visits.photo", object_id=str(ready_photo.id)).order_by("id"))
    assert [e.detail["variant"] for e in events] == ["original", "resized", "thumbnail"]
    event = events[0]
    assert (event.actor, event.municipality, event.basis) == (
        town.users["supervisor"], town.municipality, "role:supervisor"
    )
    assert event.device_token_id is not None

    default = client.get(f"sync/photos/{ready_photo.id}/image")
    assert open_jpeg(b"".join(default.streaming_content)).size == (1600, 800)
    assert_error_body(client.get(f"sync/photos/{ready_photo.id}/image?variant=raw"), 422)


def test_the_image_is_404_until_the_photo_is_ready(town, visit, upload):
    client = town.client("outreach_worker")
    photo_id = uuid4()
    assert upload(client, photo_id, visit.id, jpeg_with_gps(), run_jobs=False).status_code == 201
    state = client.get(f"sync/photos/{photo_id}").json()
    assert (state["status"], state["urls"], state["width"]) == ("received", None, None)
    assert_error_body(client.get(f"sync/photos/{photo_id}/image"), 404, "photo_not_ready")
    assert AuditEvent.objects.filter(object_type="visits.photo").count() == 0


# --------------------------------------------------------------------------------------------------
# The job


def test_the_job_run_twice_leaves_the_same_files_and_state(town, visit, media, django_capture_on_commit_callbacks):
    photo_id = uuid4()
    with django_capture_on_commit_callbacks() as queued:
        r = town.client("outreach_worker").put(f"sync/photos/{photo_id}?visit_id={visit.id}", raw=jpeg_with_gps(),
                                               content_type="image/jpeg")
    assert r.status_code == 201
    assert len(queued) == 1
    with django_capture_on_commit_callbacks(execute=True):
        queued[0]()
    photo = Photo.objects.get(pk=photo_id)
    files, contents = stored_files(media), variant_files(photo_id)
    assert photo.status == "ready"

    with django_capture_on_commit_callbacks(execute=True):
        queued[0]()  # the queued task again, e.g. a retry after a lost acknowledgement
        photo_service.process_photo(photo_id)
    again = Photo.objects.get(pk=photo_id)
    assert (again.status, again.width, again.height, again.processed_at) == (
        "ready", photo.width, photo.height, photo.processed_at
    )
    assert stored_files(media) == files
    assert variant_files(photo_id) == contents


def test_a_photo_refused_by_the_job_fails_and_its_upload_is_deleted(town, visit, upload, media, monkeypatch):
    def refuse(data, **kwargs):
        raise PhotoRejected("corrupt_image", "The JPEG file is truncated or corrupt and cannot be read.")

    monkeypatch.setattr(photo_service, "clean_image", refuse)
    client = town.client("outreach_worker")
    photo_id = uuid4()
    assert upload(client, photo_id, visit.id, jpeg_with_gps()).status_code == 201
    state = client.get(f"sync/photos/{photo_id}").json()
    assert state["status"] == "failed"
    assert "corrupt" in state["error"]
    assert state["processed_at"] and state["urls"] is None
    assert stored_files(media) == []
    assert_error_body(client.get(f"sync/photos/{photo_id}/image"), 404, "photo_not_ready")


def test_a_lost_upload_fails_and_is_repaired_by_sending_it_again(town, visit, upload, media):
    client = town.client("outreach_worker")
    photo_id, data = uuid4(), jpeg_with_gps()
    assert upload(client, photo_id, visit.id, data, run_jobs=False).status_code == 201
    (raw,) = (media / "incoming").iterdir()
    raw.unlink()
    assert photo_service.process_photo(photo_id).status == "failed"
    assert client.get(f"sync/photos/{photo_id}").json()["error"] == photo_service.UPLOAD_LOST

    r = upload(client, photo_id, visit.id, data)
    assert r.status_code == 200, r.content
    assert client.get(f"sync/photos/{photo_id}").json()["status"] == "ready"
    assert not any((media / "incoming").iterdir())
