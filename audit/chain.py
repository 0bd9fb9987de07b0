"""Checking the audit hash chain (see audit/migrations/0002_hash_chained_events.py).

Each municipality's events form one chain (events without a municipality form chain 0): event n
carries ``chain_seq = n``, the hash of event n-1 as ``prev_hash`` (64 zeros for the first) and its
own ``hash``, computed by the database function ``audit_event_digest``. `verify_chain` walks a
chain in ``chain_seq`` order, page by page over the chain's unique index (a chain can hold
millions of events), recomputing every hash in the database with that same function, and reports
the first broken link.

The walk runs in the chain's tenant scope: under row-level security the application's role sees a
municipality's events only inside that municipality's scope, and the events without a municipality
only in the platform scope.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Literal

from django.db import connection

from backend.tenancy import Scope, platform_scope, scope

GENESIS_HASH = "0" * 64
PAGE_SIZE = 10_000
PROGRESS_EVERY = 100_000

Problem = Literal["gap", "prev_hash", "hash"]

PROBLEMS: dict[str, str] = {
    "gap": "events are missing before it (its chain position does not follow the previous one)",
    "prev_hash": "prev_hash does not match the previous event's hash",
    "hash": "hash does not match its content",
}

# One page of a chain, with each event's hash recomputed by the same function the trigger used.
# The filter on COALESCE(municipality_id, 0) and the order by chain_seq follow the unique index
# audit_chain_position, so each page is an index range scan.
_PAGE_SQL = """
SELECT id, chain_seq, prev_hash,
       hash = audit_event_digest(
           prev_hash, municipality_id, chain_seq, at, actor_id, actor_username, actor_role,
           device_token_id, ip, action, object_type, object_id, basis, detail
       ) AS hash_ok,
       hash
  FROM audit_auditevent
 WHERE COALESCE(municipality_id, 0) = %s AND chain_seq > %s
 ORDER BY chain_seq
 LIMIT %s
"""


@dataclass(frozen=True)
class ChainReport:
    """The outcome of walking one chain. `events` counts every event of the chain that was walked;
    the broken_* fields name the first broken link in chain order (None when the chain is intact)."""

    municipality_id: int | None
    events: int
    broken_event_id: int | None = None
    broken_chain_seq: int | None = None
    problem: Problem | None = None

    @property
    def intact(self) -> bool:
        return self.problem is None

    def describe(self) -> str:
        """'1,234 events, intact' or '… BROKEN at event 57 (chain position 12): <what is wrong>'."""
        if self.problem is None:
            return f"{self.events:,} events, intact"
        return (
            f"{self.events:,} events, BROKEN at event {self.broken_event_id} "
            f"(chain position {self.broken_chain_seq}): {PROBLEMS[self.problem]}"
        )


def _pages(chain_key: int, page_size: int) -> Iterator[list[tuple[int, int, str, bool, str]]]:
    after = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(_PAGE_SQL, [chain_key, after, page_size])
            rows = cursor.fetchall()
        if not rows:
            return
        yield rows
        if len(rows) < page_size:
            return
        after = rows[-1][1]


def _chain_scope(municipality_id: int | None) -> AbstractContextManager[Scope]:
    return platform_scope() if municipality_id is None else scope(municipality_id)


@dataclass(frozen=True)
class ChainHead:
    """The last event of a chain: what an external copy (the backup manifest) records, so that a
    chain rewritten from some point on, consistently to its end, is still caught."""

    chain_seq: int
    hash: str


def chain_head(municipality_id: int | None) -> ChainHead | None:
    """The head of the chain of `municipality_id` (None: events without a municipality), or None
    for an empty chain."""
    with _chain_scope(municipality_id), connection.cursor() as cursor:
        cursor.execute(
            "SELECT chain_seq, hash FROM audit_auditevent WHERE COALESCE(municipality_id, 0) = %s "
            "ORDER BY chain_seq DESC LIMIT 1",
            [0 if municipality_id is None else municipality_id],
        )
        row = cursor.fetchone()
    return None if row is None else ChainHead(chain_seq=row[0], hash=row[1])


def verify_chain(
    municipality_id: int | None,
    *,
    progress: Callable[[int], None] | None = None,
    page_size: int = PAGE_SIZE,
    progress_every: int = PROGRESS_EVERY,
) -> ChainReport:
    """Walk the chain of `municipality_id` (None: the events without a municipality) and report
    its first broken link: a ``gap`` in chain_seq (events deleted before it), a ``prev_hash`` that
    is not the previous event's hash (the previous event was rewritten, hash and all, or removed),
    or a ``hash`` that does not match the event's content (the event was edited). `progress` is
    called with the number of events walked so far, every `progress_every` events."""
    chain_key = 0 if municipality_id is None else municipality_id
    events = 0
    expected_seq = 1
    expected_prev = GENESIS_HASH
    broken: tuple[int, int, Problem] | None = None
    next_progress = progress_every
    with _chain_scope(municipality_id):
        for page in _pages(chain_key, page_size):
            for event_id, chain_seq, prev_hash, hash_ok, hash_ in page:
                events += 1
                if broken is None:
                    # Checked in this order so a deletion is reported as what it is (a gap), not
                    # as the prev_hash mismatch it also causes.
                    problem: Problem | None = None
                    if chain_seq != expected_seq:
                        problem = "gap"
                    elif prev_hash != expected_prev:
                        problem = "prev_hash"
                    elif not hash_ok:
                        problem = "hash"
                    if problem is not None:
                        broken = (event_id, chain_seq, problem)
                expected_seq = chain_seq + 1
                expected_prev = hash_
            if progress is not None and events >= next_progress:
                progress(events)
                next_progress = (events // progress_every + 1) * progress_every
    if broken is None:
        return ChainReport(municipality_id=municipality_id, events=events)
    event_id, chain_seq, problem = broken
    return ChainReport(
        municipality_id=municipality_id,
        events=events,
        broken_event_id=event_id,
        broken_chain_seq=chain_seq,
        problem=problem,
    )
