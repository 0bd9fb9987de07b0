"""A 12-megapixel JPEG (4000×3000, as a tablet camera takes it, with EXIF and GPS) through the photo
job (visits.photos.service.process_photo: the clean original, the resized copy and the thumbnail),
and through the check the upload request makes (visits.photos.images.check_upload), against
Pillow's draft mode alone (Image.draft to the resized copy's size, then save), in the same run: the
time, and the peak memory (RSS) of each.

Each runs in a child process of its own, as bench_exports does: the child resets the kernel's
high-water mark of its resident set just before the work (`echo 5 > /proc/self/clear_refs`) and
reads it back after (VmHWM), so the figure is the peak while processing, not the peak of importing
Django. Each child repeats its work three times and reports the median time; the three kinds of
child alternate over three rounds (the load on this shared machine drifts), and each figure is the
median of its rounds (the peak: their maximum)."""

import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench.common import Figure

ROOT = Path(__file__).resolve().parent.parent
SIZE = (4000, 3000)
REPEAT = 3
ROUNDS = 3


def camera_jpeg() -> bytes:
    """A photo-like 12 MP JPEG: smooth light with fine grain (so it compresses like a photo, a few MB),
    carrying the metadata a tablet writes (maker, time, GPS) that the job must strip."""
    from PIL import Image, ImageFilter

    light = Image.linear_gradient("L").resize(SIZE)
    grain = Image.effect_noise(SIZE, 32).filter(ImageFilter.GaussianBlur(0.7))
    picture = Image.merge("RGB", (light, grain, Image.linear_gradient("L").rotate(90).resize(SIZE)))
    exif = Image.Exif()
    exif[0x010F] = "Apple"  # Make
    exif[0x0110] = "iPad"  # Model
    exif[0x0132] = "2026:11:22 10:15:00"  # DateTime
    exif[0x8825] = {1: "N", 2: (35.0, 29.0, 24.0), 3: "E", 4: (133.0, 44.0, 24.0)}  # GPS
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=92, exif=exif)
    return out.getvalue()


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def _status_mb(field: str) -> float:
    """VmHWM (the peak since _reset_peak) or VmRSS (now) of this process, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _draft_baseline(data: bytes) -> bytes:
    """The least any resize must do: decode at the smallest DCT scale that covers the target, save."""
    from PIL import Image

    from visits.photos.images import RESIZED_LONG_EDGE

    with Image.open(io.BytesIO(data)) as im:
        scale = RESIZED_LONG_EDGE / max(im.size)
        im.draft("RGB", (round(im.size[0] * scale), round(im.size[1] * scale)))
        out = io.BytesIO()
        im.save(out, format="JPEG", quality=85)
        return out.getvalue()


def _job_once(data: bytes, municipality_id: int, visit_id: str, user_id: int) -> None:
    from backend.tenancy import job_scope
    from visits.models import Photo
    from visits.photos.images import sha256_hex
    from visits.photos.service import incoming_path, process_photo

    with job_scope(municipality_id):
        photo = Photo.objects.create(
            id=uuid.uuid4(), municipality_id=municipality_id, visit_record_id=visit_id, uploaded_by_id=user_id,
            sha256=sha256_hex(data), size_bytes=len(data), source_format="jpeg",
        )
        path = incoming_path(photo.pk, photo.sha256)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        done = process_photo(photo.pk)
        assert done is not None and done.status == "ready", done and done.error


def _child(mode: str, source: str, municipality_id: int, visit_id: str, user_id: int) -> dict:
    import django

    django.setup()
    data = Path(source).read_bytes()
    times = []
    _reset_peak()
    resting = _status_mb("VmRSS")  # Django, the apps and the file's bytes, before any decoding
    for _ in range(REPEAT):
        started = time.perf_counter()
        if mode == "draft":
            _draft_baseline(data)
        elif mode == "check":
            from visits.photos.images import check_upload

            check_upload(data)
        else:
            _job_once(data, municipality_id, visit_id, user_id)
        times.append(time.perf_counter() - started)
    return {"seconds": statistics.median(times), "peak_mb": _status_mb("VmHWM"), "above_mb": _status_mb("VmHWM") - resting}


def _setup() -> tuple[int, str, int]:
    from django.contrib.gis.geos import Point
    from django.utils import timezone

    from accounts.roles import Role
    from accounts.services import create_user
    from neighborhoods.models import Household, Municipality
    from visits.models import VisitRecord

    town, _ = Municipality.objects.get_or_create(code="999020", defaults={"name": "写真ベンチ町", "prefecture": "鳥取県"})
    worker = create_user(municipality=town, username=f"bench-photo-{uuid.uuid4().hex[:6]}", role=Role.COORDINATOR, password=None)
    household = Household.objects.create(municipality=town, external_id=f"PH{uuid.uuid4().hex[:8]}", address="写真1",
                                         location=Point(133.74, 35.49, srid=4326))
    visit = VisitRecord.objects.create(id=uuid.uuid4(), municipality=town, household=household, worker=worker,
                                       outcome="met", visited_at=timezone.now())
    return town.pk, str(visit.pk), worker.pk


def _measure(mode: str, source: Path, ids: tuple[int, str, int], media: str) -> dict:
    env = {**os.environ, "MEDIA_ROOT": media}
    args = [sys.executable, "-m", "bench.bench_photos", mode, str(source), *map(str, ids)]
    done = subprocess.run(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, check=True)
    return json.loads(done.stdout.decode().strip().splitlines()[-1])


def run() -> list[Figure]:
    ids = _setup()
    data = camera_jpeg()
    measured: dict[str, list[dict]] = {"draft": [], "job": [], "check": []}
    with tempfile.TemporaryDirectory(prefix="bench-photos-") as folder:
        source = Path(folder) / "camera.jpg"
        source.write_bytes(data)
        for _round in range(ROUNDS):  # alternating, so each meets the same load on a shared machine
            for mode, runs in measured.items():
                runs.append(_measure(mode, source, ids, folder))

    def seconds(mode: str) -> float:
        return statistics.median(r["seconds"] for r in measured[mode])

    def peak(mode: str, key: str = "peak_mb") -> float:
        return max(r[key] for r in measured[mode])

    size = f"{SIZE[0]}×{SIZE[1]} JPEG of {len(data) / 1e6:.1f} MB"
    return [
        Figure("photo job, 12 MP JPEG (original + 1600 px + thumbnail) vs Pillow draft + save", seconds("job"),
               seconds("draft"), unit="s", note=f"{size}; median of {ROUNDS} alternating children × {REPEAT}"),
        Figure("photo job, 12 MP JPEG: peak RSS vs Pillow draft + save", peak("job"), peak("draft"), unit="MB",
               note=f"above the process's resting size: {peak('job', 'above_mb'):.0f} MB vs {peak('draft', 'above_mb'):.0f} MB"),
        Figure("photo upload check (in the request) vs Pillow draft + save: time", seconds("check"), seconds("draft"),
               unit="s", note=f"peak RSS {peak('check'):.0f} MB vs {peak('draft'):.0f} MB; above resting "
               f"{peak('check', 'above_mb'):.0f} MB vs {peak('draft', 'above_mb'):.0f} MB"),
    ]


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    mode, source, municipality, visit, user = sys.argv[1:6]
    print(json.dumps(_child(mode, source, int(municipality), visit, int(user))))
