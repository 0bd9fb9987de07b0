"""The load scenario (issue 15, point 4): field tablets and supervisors against the real server.

    locust -f bench/load/locustfile.py --headless -u N+M -r R -t 3m --host http://127.0.0.1:8201

bench/load/run.py starts the server, runs this and checks the database afterwards. Environment:
LOAD_TABLETS (N), LOAD_SUPERVISORS (M, spawned first), LOAD_LEDGER (where acknowledged ops and
photos are written, for the lost/doubled check), LOAD_SAMPLES (every response time, for the
aggregate without the logins).

- A **tablet** is an outreach worker of a demo corporation: it logs in with the token endpoint,
  registers a device and pulls until done; then, every few seconds, pushes a batch of visit.create
  ops for its scheduled visits (ids made on the tablet; a batch is sometimes sent twice, as when
  the answer is lost, and a failed push is sent again with the same op_ids), uploads a photo for
  some visits and pulls incrementally.
- A **supervisor** logs in, opens the map (its configuration), pans (24 tiles of the 自治会 and
  世帯 layers at z13–z16, six at a time as a browser does, revalidating tiles it has seen with
  their ETag) and reads coverage and the campaign's progress.

Each simulated user comes from its own address (X-Forwarded-For, the server trusting 127.0.0.1 as
its proxy), as tablets do behind a reverse proxy: the login limit counts per address."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import random
import sys
import uuid
from pathlib import Path

from gevent.pool import Pool
from locust import FastHttpUser, between, events, task

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))
from bench.load import scenario

API = "/api/v1"
TABLETS = int(os.environ.get("LOAD_TABLETS", "5"))
SUPERVISORS = int(os.environ.get("LOAD_SUPERVISORS", "1"))
RESEND_SHARE = 0.1  # pushes whose answer is "lost": the tablet sends the same batch again
PHOTO_SHARE = 0.3  # met households photographed
BROWSER_PARALLEL = 6  # requests a browser makes at once to one host

LEDGER = scenario.Ledger(os.environ.get("LOAD_LEDGER"))
PHOTO = scenario.small_jpeg()
SEATS = scenario.Seats(TABLETS, scenario.worker_accounts())
_supervisor_numbers = itertools.count()
_addresses = itertools.count(1)
_samples: dict[str, list[float]] = {}


@events.request.add_listener
def _keep_sample(request_type, name, response_time, exception, **kwargs) -> None:
    if exception is None:
        _samples.setdefault(f"{request_type} {name}", []).append(response_time)


@events.test_stop.add_listener
def _write_samples(**kwargs) -> None:
    path = os.environ.get("LOAD_SAMPLES")
    if path:
        Path(path).write_text(json.dumps(_samples), encoding="utf-8")


class ApiUser(FastHttpUser):
    """A logged-in user of the API, from an address of its own."""

    abstract = True
    wait_time = between(3, 8)  # reading the screen, walking to the next door
    concurrency = BROWSER_PARALLEL

    def login(self, username: str, device_name: str) -> bool:
        n = next(_addresses)
        self.headers = {"X-Forwarded-For": f"10.15.{n // 250}.{n % 250 + 1}", "Accept": "application/json"}
        response = self.client.post(
            f"{API}/auth/token", name="/auth/token", headers=self.headers,
            json={"username": username, "password": scenario.demo_password(), "device_name": device_name},
        )
        if response.status_code != 201:
            return False
        self.headers["Authorization"] = f"Bearer {response.json()['token']}"
        return True


class Tablet(ApiUser):
    weight = 1

    def on_start(self) -> None:
        number, self.seat = SEATS.take()
        self.rng = random.Random(number)
        self.device_name = f"負荷試験タブレット{number}"
        self.outbox: list[list[dict]] = []  # batches sent without an answer: sent again, same op_ids
        self.recorded: set[str] = set()
        self.begin_session()

    def begin_session(self) -> None:
        """Log in, register a new device and pull from scratch (again after a failed start)."""
        self.households: dict[str, dict] = {}
        self.visits: dict[str, dict] = {}
        self.form: dict | None = None
        self.cursor = ""
        self.device_id = str(uuid.uuid4())
        self.ready = self.login(self.seat.username, self.device_name) and self._register() and self.pull("first")

    def _register(self) -> bool:
        response = self.client.post(
            f"{API}/sync/devices", name="/sync/devices", headers=self.headers,
            json={"device_id": self.device_id, "name": "負荷試験", "platform": "locust"},
        )
        return response.status_code == 201

    def pull(self, which: str) -> bool:
        """Pull pages until has_more is false, keeping what the tablet holds."""
        while True:
            response = self.client.get(
                f"{API}/sync/pull?device_id={self.device_id}&cursor={self.cursor}&limit=200",
                name=f"/sync/pull ({which})", headers=self.headers,
            )
            if response.status_code != 200:
                return False
            body = response.json()
            self._keep(body)
            self.cursor = body["next_cursor"]
            if not body["has_more"]:
                return True

    def _keep(self, body: dict) -> None:
        for change in body["changes"]:
            held = {"household": self.households, "scheduled_visit": self.visits}.get(change["kind"])
            if held is not None:
                held[change["id"]] = change["data"]
            elif change["kind"] == "form" and change["data"]["key"] == "household-visit" and (
                self.form is None or change["data"]["version"] > self.form["version"]
            ):
                self.form = change["data"]
        for gone in body["purge"]:
            {"household": self.households, "scheduled_visit": self.visits}.get(gone["kind"], {}).pop(gone["id"], None)

    def next_batch(self) -> list[dict]:
        """1–4 of this tablet's open scheduled visits in route order; when none are left, visits
        to households of its list outside the plan (no scheduled visit)."""
        now = dt.datetime.now(dt.UTC)
        size = self.rng.randint(1, 4)
        open_visits = sorted(
            (v for v in self.visits.values()
             if v["status"] in ("planned", "issued") and v["id"] not in self.recorded and self.seat.takes(v["id"])
             and v["household_id"] in self.households),
            key=lambda v: (v["date"], v["time_band"], v["route_order"] or 0),
        )[:size]
        if open_visits:
            return [scenario.visit_op(household=self.households[v["household_id"]], scheduled_visit_id=v["id"],
                                      form=self.form, rng=self.rng, now=now) for v in open_visits]
        if not self.households:
            return []
        mine = sorted(h for h in self.households if uuid.UUID(h).int % self.seat.slots == self.seat.slot)
        return [scenario.visit_op(household=self.households[h], scheduled_visit_id=None, form=self.form,
                                  rng=self.rng, now=now) for h in self.rng.sample(mine, k=min(size, len(mine)))]

    def push(self, ops: list[dict], *, resend: bool) -> list[dict] | None:
        """One push; the results are written to the ledger. Anything but applied (first time) or
        duplicate (a resend) with the same record id fails the request in the statistics."""
        name = "/sync/push (resend)" if resend else "/sync/push"
        with self.client.post(f"{API}/sync/push", name=name, headers=self.headers, catch_response=True,
                              json={"device_id": self.device_id, "ops": ops}) as response:
            if response.status_code != 200:
                return None
            results = response.json()["results"]
            LEDGER.push(ops, results, resend=resend)
            unexpected = [
                f"{result['status']} {(result.get('error') or {}).get('code', '')}"
                for op, result in zip(ops, results, strict=True)
                if result["status"] not in ("applied", "duplicate") or result.get("id") != op["data"]["id"]
                or (resend and result["status"] != "duplicate")
            ]
            if unexpected:
                response.failure(f"ops not applied: {', '.join(sorted(set(unexpected)))}")
            return results

    def upload_photo(self, visit_id: str, photo_id: str, *, again: bool) -> None:
        with self.client.put(
            f"{API}/sync/photos/{photo_id}?visit_id={visit_id}", data=PHOTO, catch_response=True,
            name="/sync/photos/{id} (again)" if again else "/sync/photos/{id}",
            headers={**self.headers, "Content-Type": "image/jpeg"},
        ) as response:
            LEDGER.photo(photo_id, visit_id, response.status_code)
            expected = 200 if again else 201
            if response.status_code != expected:
                response.failure(f"photo upload answered {response.status_code}, expected {expected}")

    @task
    def round_of_visits(self) -> None:
        if not self.ready:  # a failed start (counted as an error already): try again
            self.begin_session()
            return
        ops = self.outbox.pop(0) if self.outbox else self.next_batch()
        if ops:
            results = self.push(ops, resend=False)
            if results is None:
                self.outbox.append(ops)
            else:
                self.recorded.update(op["data"]["scheduled_visit_id"] for op in ops if op["data"]["scheduled_visit_id"])
                if self.rng.random() < RESEND_SHARE:
                    self.push(ops, resend=True)
                for op in ops:
                    if op["data"]["outcome"] == "met" and self.rng.random() < PHOTO_SHARE:
                        photo_id = str(uuid.uuid4())
                        self.upload_photo(op["data"]["id"], photo_id, again=False)
                        if self.rng.random() < RESEND_SHARE:
                            self.upload_photo(op["data"]["id"], photo_id, again=True)
        self.pull("incremental")


class Supervisor(ApiUser):
    fixed_count = SUPERVISORS

    def on_start(self) -> None:
        self.rng = random.Random(10_000 + next(_supervisor_numbers))
        self.etags: dict[str, str] = {}
        self.ready = self.login(scenario.SUPERVISOR, "負荷試験ブラウザ") and self._open_map()

    def _open_map(self) -> bool:
        response = self.client.get(f"{API}/maps/layers", name="/maps/layers", headers=self.headers)
        if response.status_code != 200:
            return False
        config = response.json()
        self.bounds, self.campaign = config["bounds"], config["current_campaign_id"]
        self.hoods = [n["id"] for n in self._json(f"{API}/neighborhoods?limit=100", "/neighborhoods").get("items", [])]
        return self.bounds is not None

    def _json(self, url: str, name: str) -> dict:
        response = self.client.get(url, name=name, headers=self.headers)
        return response.json() if response.status_code == 200 else {}

    def _tile(self, layer: str, z: int, x: int, y: int) -> None:
        url = f"{API}/maps/tiles/{layer}/{z}/{x}/{y}.mvt" + (f"?campaign={self.campaign}" if self.campaign else "")
        headers = dict(self.headers)
        if url in self.etags:
            headers["If-None-Match"] = self.etags[url]
        response = self.client.get(url, name=f"/maps/tiles/{layer}/{{z}}/{{x}}/{{y}}.mvt", headers=headers)
        if response.status_code == 200 and response.headers.get("ETag"):
            self.etags[url] = response.headers["ETag"]

    @task(3)
    def pan(self) -> None:
        if not self.ready:
            self.on_start()
            return
        pool = Pool(BROWSER_PARALLEL)
        for layer, z, x, y in scenario.pan_tiles(self.bounds, self.rng.choice(scenario.PAN_ZOOMS), self.rng):
            pool.spawn(self._tile, layer, z, x, y)
        pool.join()

    @task(1)
    def read_coverage(self) -> None:
        if not self.ready or not self.campaign:
            return
        c = self.campaign
        self._json(f"{API}/maps/coverage?campaign={c}&limit=1", "/maps/coverage (totals)")
        self._json(f"{API}/maps/coverage?campaign={c}&group_by=partner", "/maps/coverage (per corporation)")
        if self.hoods:
            hood = self.rng.choice(self.hoods)
            self._json(f"{API}/maps/coverage/weekly?campaign={c}&neighborhood={hood}", "/maps/coverage/weekly")
        self._json(f"{API}/campaigns/{c}/progress", "/campaigns/{id}/progress")
