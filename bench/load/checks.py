"""After a load run: what the server acknowledged (the ledger the tablets wrote) against what the
database holds. A visit the server answered `applied` or `duplicate` for must be there exactly
once, under the record id the tablet made; no scheduled visit may carry two records that do not
supersede one another (the contract's only way to a second record of one visit is a correction,
and the scenario sends one op per scheduled visit); every acknowledged photo must be there, on
its visit.

Read as the schema owner (row-level security does not hide rows from the tables' owner), with
psycopg only, so the check needs no Django settings."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

ACKNOWLEDGED = ("applied", "duplicate")


@dataclass
class Ledger:
    """The tablets' view: per op_id, the record id it made and every status the server answered."""

    records: dict[str, str] = field(default_factory=dict)  # op_id -> record id the tablet made
    statuses: dict[str, list[str]] = field(default_factory=dict)
    answered_ids: dict[str, set[str]] = field(default_factory=dict)  # op_id -> ids the server answered
    resends: int = 0
    photos: dict[str, str] = field(default_factory=dict)  # acknowledged photo id -> visit record id
    photo_answers: Counter = field(default_factory=Counter)

    @property
    def acknowledged(self) -> dict[str, str]:
        return {op: rid for op, rid in self.records.items() if any(s in ACKNOWLEDGED for s in self.statuses[op])}

    @property
    def rejected(self) -> int:
        return sum(1 for statuses in self.statuses.values() for s in statuses if s not in ACKNOWLEDGED)


def read_ledger(path: Path) -> Ledger:
    ledger = Ledger()
    if not path.exists():
        return ledger
    for line in path.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        if "push" in entry:
            push = entry["push"]
            ledger.records[push["op_id"]] = push["record_id"]
            ledger.statuses.setdefault(push["op_id"], []).append(push["status"])
            if push.get("id"):
                ledger.answered_ids.setdefault(push["op_id"], set()).add(push["id"])
            ledger.resends += bool(push.get("resend"))
        elif "photo" in entry:
            photo = entry["photo"]
            ledger.photo_answers[photo["status"]] += 1
            if photo["status"] in (200, 201):
                ledger.photos[photo["photo_id"]] = photo["visit_id"]
    return ledger


@dataclass
class Verdict:
    acknowledged: int
    lost: list[str]  # acknowledged op_ids without their record
    doubled_ops: list[str]  # op_ids with more than one record
    doubled_visits: list[str]  # scheduled visits with two records that do not supersede one another (one in the run)
    answer_mismatches: int  # an op answered with another record id than the one it carried
    rejected: int
    resends: int
    unacknowledged: int  # records received in the run whose answer never reached a tablet
    photos_acknowledged: int
    photos_missing: list[str]
    photo_states: dict[str, int]

    @property
    def holds(self) -> bool:
        return not (self.lost or self.doubled_ops or self.doubled_visits or self.answer_mismatches
                    or self.photos_missing)


def check(conn: psycopg.Connection, ledger: Ledger, *, since: dt.datetime, until: dt.datetime) -> Verdict:
    """`conn`: a connection to the server's database as the schema owner."""
    acknowledged = ledger.acknowledged
    by_op: dict[str, list[str]] = {}
    for op_id, record_id in conn.execute(
        "SELECT op_id::text, id::text FROM visits_visitrecord WHERE op_id = ANY(%s::uuid[])", [list(acknowledged)]
    ).fetchall():
        by_op.setdefault(op_id, []).append(record_id)
    doubled_visits = [str(r[0]) for r in conn.execute(
        "SELECT scheduled_visit_id FROM visits_visitrecord WHERE scheduled_visit_id IS NOT NULL"
        " AND supersedes_id IS NULL GROUP BY scheduled_visit_id"
        " HAVING count(*) > 1 AND bool_or(received_at BETWEEN %s AND %s)", [since, until],
    ).fetchall()]
    unacknowledged = conn.execute(
        "SELECT count(*) FROM visits_visitrecord WHERE received_at BETWEEN %s AND %s"
        " AND (op_id IS NULL OR NOT (op_id = ANY(%s::uuid[])))", [since, until, list(acknowledged)],
    ).fetchone()
    photos = {str(pid): (str(vid), status) for pid, vid, status in conn.execute(
        "SELECT id, visit_record_id, status FROM visits_photo WHERE id = ANY(%s::uuid[])", [list(ledger.photos)],
    ).fetchall()}
    return Verdict(
        acknowledged=len(acknowledged),
        lost=sorted(op for op, rid in acknowledged.items() if rid not in by_op.get(op, [])),
        doubled_ops=sorted(op for op, rids in by_op.items() if len(rids) > 1),
        doubled_visits=doubled_visits,
        answer_mismatches=sum(1 for op, ids in ledger.answered_ids.items() if ids != {ledger.records[op]}),
        rejected=ledger.rejected,
        resends=ledger.resends,
        unacknowledged=unacknowledged[0] if unacknowledged else 0,
        photos_acknowledged=len(ledger.photos),
        photos_missing=sorted(p for p, vid in ledger.photos.items() if photos.get(p, ("",))[0] != vid),
        photo_states=dict(Counter(status for _, status in photos.values())),
    )


def photos_pending(conninfo: str, photo_ids: list[str]) -> int:
    """Photos still waiting for the job cluster (received, not yet processed)."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        return conn.execute(
            "SELECT count(*) FROM visits_photo WHERE id = ANY(%s::uuid[]) AND status = 'received'", [photo_ids]
        ).fetchone()[0]
