"""What the simulated tablets and supervisors send, without locust: the demo accounts, which
tablet takes which scheduled visits, the visit.create operations, the map page's tiles for a pan,
the photo and the ledger of what the server acknowledged.

Kept apart from the locustfile (importing locust patches the standard library with gevent), so
the tests can check these payloads against the real sync contract."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import os
import random
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent
USERS_CSV = ROOT / "fixtures" / "hokuei" / "users.csv"
JST = dt.timezone(dt.timedelta(hours=9))

SUPERVISOR = "demo-supervisor"
WORKER_ROLE = "訪問員"  # the role column of fixtures/hokuei/users.csv, as import_users reads it
OUTCOMES = (("met", 80), ("absent", 12), ("leaflet_left", 5), ("refused", 3))  # weights in %

# The map page (maps/static/maps/map.js): 512-px vector tiles, the neighborhoods source up to z15
# (over-zoomed above), households from z14. A pan shows a 4 x 3 view per layer; at z13 only the
# neighborhoods layer draws, over a view twice as wide.
NEIGHBORHOODS_MAX_SOURCE_ZOOM = 15
HOUSEHOLDS_MIN_ZOOM = 14
PAN_ZOOMS = (13, 14, 15, 16)


def demo_password() -> str:
    return os.environ.get("TSUNAGU_DEMO_PASSWORD", "tsunagu-demo")


def worker_accounts(path: Path = USERS_CSV) -> list[str]:
    """The demo town's outreach workers (the partner corporations' staff), from the file the demo
    onboards them from, so the scenario follows the fixture."""
    with path.open(encoding="utf-8") as fh:
        return [row["ユーザー名"] for row in csv.DictReader(fh) if row["役割"] == WORKER_ROLE]


@dataclass(frozen=True)
class Seat:
    """Tablet `index` of `tablets`: whose account it logs in as and which share of that worker's
    scheduled visits it records. More tablets than workers share accounts (one worker, two
    tablets), each taking its own slice, so no scheduled visit is recorded by two tablets."""

    username: str
    slot: int
    slots: int

    def takes(self, scheduled_visit_id: str) -> bool:
        return uuid.UUID(scheduled_visit_id).int % self.slots == self.slot


def seat_for(index: int, tablets: int, accounts: list[str]) -> Seat:
    account = index % len(accounts)
    slots = len(range(account, max(tablets, index + 1), len(accounts)))
    return Seat(username=accounts[account], slot=index // len(accounts), slots=slots)


class Seats:
    """Hands out the seats of `tablets` tablets, 0 … tablets - 1, once each: the tablets' own
    numbering (a counter shared with other users would leave gaps, and two tablets of one worker
    would then take the same visits)."""

    def __init__(self, tablets: int, accounts: list[str]) -> None:
        self.tablets, self.accounts, self.given = tablets, accounts, 0

    def take(self) -> tuple[int, Seat]:
        number = self.given
        self.given += 1
        return number, seat_for(number, self.tablets, self.accounts)


# --- visit.create ---------------------------------------------------------------------------------


def answers_for(definition: dict, rng: random.Random) -> dict:
    """Complete answers to a survey form, whatever its questions: every required question and most
    of the others, each of its declared type."""
    answers: dict[str, Any] = {}
    for question in definition.get("questions", []):
        if not question.get("required") and rng.random() < 0.3:
            continue
        kind, choices = question.get("type"), question.get("choices") or []
        if kind == "integer":
            answers[question["id"]] = rng.randint(1, 5)
        elif kind == "number":
            answers[question["id"]] = round(rng.uniform(0, 10), 1)
        elif kind == "date":
            answers[question["id"]] = dt.date(2026, 4, 1).isoformat()
        elif kind == "boolean":
            answers[question["id"]] = rng.random() < 0.3
        elif kind == "choice" and choices:
            answers[question["id"]] = rng.choice(choices)
        elif kind == "multi_choice" and choices:
            answers[question["id"]] = rng.sample(choices, k=rng.randint(0, min(3, len(choices))))
        elif kind == "text":
            answers[question["id"]] = "（負荷試験）特記事項なし"
    return answers


def device_fix(location: dict | None, rng: random.Random) -> dict | None:
    """A GPS fix a few metres from the household, as the tablet reports it."""
    if not location:
        return None
    lon, lat = location["coordinates"]
    return {"type": "Point", "coordinates": [round(lon + rng.uniform(-2e-4, 2e-4), 7),
                                             round(lat + rng.uniform(-2e-4, 2e-4), 7)],
            "accuracy_m": round(rng.uniform(5, 30), 1)}


def visit_op(*, household: dict, scheduled_visit_id: str | None, form: dict | None, rng: random.Random,
             now: dt.datetime) -> dict:
    """One visit.create with ids made by the tablet (SYNC.md). A met household gets the form's
    answers; other outcomes carry none."""
    outcome = rng.choices([o for o, _ in OUTCOMES], weights=[w for _, w in OUTCOMES])[0]
    data: dict[str, Any] = {
        "id": str(uuid.uuid4()), "household_id": household["id"], "scheduled_visit_id": scheduled_visit_id,
        "outcome": outcome, "visited_at": (now - dt.timedelta(minutes=rng.randint(1, 30))).astimezone(JST).isoformat(),
        "notes": "", "location": device_fix(household.get("location"), rng), "supersedes": None,
    }
    if form is not None and outcome == "met":
        data["form_key"], data["form_version"] = form["key"], form["version"]
        data["answers"] = answers_for(form["definition"], rng)
    return {"op_id": str(uuid.uuid4()), "kind": "visit.create", "data": data}


# --- the map page's tiles -------------------------------------------------------------------------


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    """The Web Mercator (slippy map) tile holding a point."""
    n = 2**z
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return min(max(x, 0), n - 1), min(max(y, 0), n - 1)


def _view(center: tuple[int, int], z: int, cols: int, rows: int) -> list[tuple[int, int, int]]:
    n = 2**z
    x0, y0 = center[0] - cols // 2, center[1] - rows // 2
    return [(z, (x0 + i) % n, min(max(y0 + j, 0), n - 1)) for j in range(rows) for i in range(cols)]


def pan_tiles(bounds: list[float], zoom: int, rng: random.Random) -> list[tuple[str, int, int, int]]:
    """The tiles the map page asks for after a pan to a random point of the town at `zoom`:
    24 requests (z13: 6 x 4 neighborhoods; z14 and up: 4 x 3 of each of the two layers)."""
    lon = rng.uniform(bounds[0], bounds[2])
    lat = rng.uniform(bounds[1], bounds[3])
    if zoom < HOUSEHOLDS_MIN_ZOOM:
        return [("neighborhoods", *t) for t in _view(tile_of(lon, lat, zoom), zoom, 6, 4)]
    nz = min(zoom, NEIGHBORHOODS_MAX_SOURCE_ZOOM)
    hoods = [("neighborhoods", *t) for t in _view(tile_of(lon, lat, nz), nz, 4, 3)]
    homes = [("households", *t) for t in _view(tile_of(lon, lat, zoom), zoom, 4, 3)]
    return hoods + homes


# --- the photo and the ledger ---------------------------------------------------------------------


def small_jpeg(width: int = 800, height: int = 600) -> bytes:
    """A door-step photo stand-in: a JPEG with some texture (so it is not a trivial file)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), (180, 200, 220))
    draw = ImageDraw.Draw(image)
    rng = random.Random(15)
    for _ in range(200):
        x, y = rng.randrange(width), rng.randrange(height)
        draw.rectangle((x, y, x + rng.randint(5, 60), y + rng.randint(5, 60)),
                       fill=(rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=80)
    return out.getvalue()


class Ledger:
    """What the server acknowledged, one JSON object a line, read back by checks.py after the run:
    push results ({"push": …}) and photo uploads ({"photo": …})."""

    def __init__(self, path: str | None) -> None:
        self._fh = open(path, "a", encoding="utf-8") if path else None  # noqa: SIM115 (kept open for the run)

    def push(self, ops: list[dict], results: list[dict], *, resend: bool) -> None:
        for op, result in zip(ops, results, strict=True):
            self._write({"push": {
                "op_id": op["op_id"], "record_id": op["data"]["id"], "scheduled_visit_id": op["data"]["scheduled_visit_id"],
                "status": result["status"], "id": result.get("id"), "resend": resend,
                "error": (result.get("error") or {}).get("code"),
            }})

    def photo(self, photo_id: str, visit_id: str, status: int) -> None:
        self._write({"photo": {"photo_id": photo_id, "visit_id": visit_id, "status": status}})

    def _write(self, entry: dict) -> None:
        if self._fh is not None:
            self._fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
            self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
