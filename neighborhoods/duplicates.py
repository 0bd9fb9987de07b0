"""Possible duplicate households (同一世帯の重複候補).

Finding: two live (not merged) households of one municipality are a possible duplicate when they
have the same non-empty `address_normalized` and a similar name:

- the name of a household is its 世帯主's (relation = head), else the eldest resident's (then by
  name, then id): one person per household, so a pair is compared once;
- the kana of both, normalised by `normalize_kana` (NFKC, hiragana to katakana with jaconv, small
  kana to large, ヂ/ヅ to ジ/ズ, ヰ/ヱ to イ/エ; spaces, 長音 "ー", hyphens and "・" removed), when
  both have kana; else the names themselves (NFKC, spaces removed);
- similar: equal, or pg_trgm `similarity()` of the two at least SIMILARITY_THRESHOLD. 0.5 lets a
  typo or a spelling variant through (ヤマダタロウ / ヤマダタロー: 0.62 once "ー" is dropped) and
  keeps two people of one family apart (ヤマダタロウ / ヤマダハナコ: 0.27, the usual 世帯分離 of
  parents and children at one address);
- a household with no residents at all has no name: it pairs with another at its address only
  when exactly two live households share that address (a block of flats lists many households
  under one address; pairing all of them would say nothing).

Pairs a coordinator judged distinct (DistinctHouseholds) are left out. The search is one SQL
statement: the households are grouped by (municipality, address_normalized) through its index and
only households sharing an address are joined, never every household with every other.

Merging two of them is neighborhoods.merging.

Served from a stored result (issue 15, point 5: every pair of a town of 1.8 million households took
6 seconds per request). GET /households/duplicates reads PossibleDuplicatePair, the pairs as last
computed, each at its position in the report's order (a page is a range of one index), as
reports.snapshots serves reports:

- The report's version is this module's code and the data versions of its inputs, households and
  residents (maps.queries.data_version: per municipality, kept by statement-level triggers, one
  index lookup each). Judgements (DistinctHouseholds) are not an input: they are written only by
  `mark_not_duplicate` and merges, which delete the pairs they handle from the stored report in
  their own transaction, so the list a coordinator works through never shows a pair they just
  handled (a refresh running meanwhile leaves those pairs out: both lock the DuplicateScan row).
- Same version: the stored pairs. Changed: one refresh per version is queued (django-q2,
  neighborhoods.duplicates_tasks) and the read answers the stored pairs, saying they are stale;
  with tasks run inline (tests) the refresh happens first. Never computed: computed in the
  request, once (concurrent first reads wait for the first).
- Freshness travels in the page itself: the list's envelope (api.pagination.Paginated: items,
  count, count_capped) plus `as_of`, `stale` and `refreshing`, the fields the stored reports carry,
  in an envelope of this endpoint's own (PagedDuplicatePairOut, duplicates_schemas.DuplicatePages):
  typed in the OpenAPI document, and no other list's schema changes. Headers were the other choice;
  a client generated from the OpenAPI document would not see them.
- An import still asks for the pairs touching what it wrote, computed live
  (`find_possible_duplicates(household_ids=...)`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
import unicodedata
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any
from uuid import UUID

import jaconv
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import User
from audit.models import AuditEvent
from audit.services import record_access, record_change
from backend.errors import InvalidInput, NotFound
from maps.queries import VersionContext, data_version
from maps.services import claim_refresh
from neighborhoods import access
from neighborhoods.models import DistinctHouseholds, DuplicateScan, Household, PossibleDuplicatePair

logger = logging.getLogger("tsunagu.neighborhoods")

SIMILARITY_THRESHOLD = 0.5

# --- the kana of a name, in one spelling --------------------------------------------------------------

_SMALL_TO_LARGE = dict(zip("ァィゥェォヵヶッャュョヮ", "アイウエオカケツヤユヨワ", strict=True))
_VARIANTS = {"ヂ": "ジ", "ヅ": "ズ", "ヰ": "イ", "ヱ": "エ"}
# Removed: spaces (NFKC turns the full-width one into " "), 長音, hyphens people type for it, 中黒.
_DROPPED = " ー-‐―−・"


def _fold_table() -> dict[str, str]:
    """Character -> replacement, after NFKC: hiragana to katakana (jaconv), then the folds above."""
    table: dict[str, str] = {}
    hiragana = [chr(c) for c in range(0x3041, 0x3097)] + ["ゝ", "ゞ"]
    for char in hiragana:
        table[char] = jaconv.hira2kata(char)
    for source in [*table, *_SMALL_TO_LARGE, *_VARIANTS]:
        target = table.get(source, source)
        target = _SMALL_TO_LARGE.get(target, _VARIANTS.get(target, target))
        table[source] = target
    return {k: v for k, v in table.items() if k != v}


_FOLD = _fold_table()
# The same fold as one SQL translate(): the characters of FROM past the length of TO are removed.
_FOLD_FROM = "".join(_FOLD) + _DROPPED
_FOLD_TO = "".join(_FOLD.values())
_PY_FOLD = {ord(k): v for k, v in _FOLD.items()} | {ord(c): None for c in _DROPPED}


def normalize_kana(text: str) -> str:
    """A kana name in one spelling (what the duplicate search compares; the SQL does the same)."""
    return unicodedata.normalize("NFKC", text).translate(_PY_FOLD)


def normalize_name(text: str) -> str:
    """A name in one spelling: NFKC, whitespace removed."""
    return "".join(unicodedata.normalize("NFKC", text).split())


# --- finding candidates ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PossibleDuplicate:
    """Two households that may be one: the smaller id first."""

    first_id: UUID
    first_external_id: str
    first_address: str
    first_name: str
    second_id: UUID
    second_external_id: str
    second_address: str
    second_name: str
    address_normalized: str
    compared: str  # "kana", "name", or "" (a household without residents)
    score: float | None
    reason: str  # same_kana | similar_kana | same_name | similar_name | no_residents


_CANDIDATES_SQL = r"""
WITH live AS MATERIALIZED (
    SELECT h.id, h.external_id, h.address, h.address_normalized,
           count(*) OVER (PARTITION BY h.address_normalized) AS at_address
      FROM neighborhoods_household h
     WHERE h.municipality_id = %(municipality)s AND h.merged_into_id IS NULL AND h.address_normalized <> ''
       AND (%(everything)s OR h.address_normalized IN (
               SELECT t.address_normalized FROM neighborhoods_household t
                WHERE t.municipality_id = %(municipality)s AND t.id = ANY(%(ids)s::uuid[])))
), keyed AS (
    SELECT l.*, coalesce(k.kana, '') AS kana, coalesce(k.name, '') AS name
      FROM live l
      LEFT JOIN LATERAL (
            SELECT translate(normalize(r.kana, NFKC), %(fold_from)s, %(fold_to)s) AS kana,
                   regexp_replace(normalize(r.name, NFKC), '\s+', '', 'g') AS name
              FROM neighborhoods_resident r
             WHERE r.municipality_id = %(municipality)s AND r.household_id = l.id
             ORDER BY (r.relation = 'head') DESC, r.birth_year NULLS LAST, r.name, r.id
             LIMIT 1) k ON true
     WHERE l.at_address > 1
), pairs AS (
    SELECT a.id AS first_id, a.external_id AS first_external_id, a.address AS first_address,
           b.id AS second_id, b.external_id AS second_external_id, b.address AS second_address,
           a.address_normalized, a.at_address,
           CASE WHEN a.kana <> '' AND b.kana <> '' THEN 'kana'
                WHEN a.name <> '' AND b.name <> '' THEN 'name' ELSE '' END AS compared,
           CASE WHEN a.kana <> '' AND b.kana <> '' THEN a.kana ELSE a.name END AS first_name,
           CASE WHEN a.kana <> '' AND b.kana <> '' THEN b.kana ELSE b.name END AS second_name
      FROM keyed a
      JOIN keyed b ON b.address_normalized = a.address_normalized AND a.id < b.id
     WHERE (%(everything)s OR a.id = ANY(%(ids)s::uuid[]) OR b.id = ANY(%(ids)s::uuid[]))
       AND NOT EXISTS (SELECT 1 FROM neighborhoods_distincthouseholds d
                        WHERE d.municipality_id = %(municipality)s AND d.first_id = a.id AND d.second_id = b.id)
), scored AS (
    SELECT p.*,
           CASE WHEN p.compared = '' THEN NULL
                WHEN p.first_name = p.second_name THEN 1.0
                ELSE similarity(p.first_name, p.second_name) END AS score
      FROM pairs p
)
SELECT first_id, first_external_id, first_address, first_name,
       second_id, second_external_id, second_address, second_name,
       address_normalized, compared, score::float8 AS score,
       CASE WHEN compared = '' THEN 'no_residents'
            WHEN score = 1.0 AND first_name = second_name THEN 'same_' || compared
            ELSE 'similar_' || compared END AS reason
  FROM scored
 WHERE (compared = '' AND at_address = 2) OR score >= %(threshold)s
 ORDER BY address_normalized, first_external_id, second_external_id
"""


def find_possible_duplicates(*, municipality_id: int, household_ids: list | None = None) -> list[PossibleDuplicate]:
    """Pairs of live households of the municipality that may be one (see the module's docstring),
    ordered by address; with `household_ids`, only the pairs touching one of them (the households an
    import just wrote)."""
    params: dict[str, Any] = {
        "municipality": municipality_id,
        "everything": household_ids is None,
        "ids": [str(i) for i in household_ids or []],
        "fold_from": _FOLD_FROM,
        "fold_to": _FOLD_TO,
        "threshold": SIMILARITY_THRESHOLD,
    }
    with connection.cursor() as cursor:
        cursor.execute(_CANDIDATES_SQL, params)
        columns = [c.name for c in cursor.description]
        return [PossibleDuplicate(**dict(zip(columns, row, strict=True))) for row in cursor.fetchall()]


# --- judging a pair distinct ------------------------------------------------------------------------


def household_in_municipality(*, municipality_id: int, household_id: Any, loc: list[str]) -> Household:
    household = Household.objects.filter(municipality_id=municipality_id, pk=household_id).first()
    if household is None:
        raise NotFound("No such household in this municipality.", code="household_unknown",
                       details=[{"loc": loc, "msg": "no such household"}])
    return household


@transaction.atomic
def mark_not_duplicate(*, household: Household, other_id: Any, by: User, request: HttpRequest | None = None) -> bool:
    """Record that two households of a municipality are not one (the duplicate report stops pairing
    them). Idempotent: True when the judgement is new."""
    access.require_household_merger(by)
    other = household_in_municipality(municipality_id=household.municipality_id, household_id=other_id, loc=["body", "other"])
    if other.pk == household.pk:
        raise InvalidInput("A household cannot be judged distinct from itself.", code="same_household",
                           details=[{"loc": ["body", "other"], "msg": "other: the same household as in the path"}])
    first, second = sorted((household.pk, other.pk))
    _, created = DistinctHouseholds.objects.get_or_create(
        municipality_id=household.municipality_id, first_id=first, second_id=second, defaults={"decided_by": by},
    )
    forget_stored_pairs(municipality_id=household.municipality_id, pair=(first, second))
    if created:
        record_household_change(by, request, household, basis=f"role:{by.role}", detail={"not_duplicate_of": str(other.pk)})
    return created


def record_household_change(by: User, request: HttpRequest | None, household: Household, *, basis: str, detail: dict) -> None:
    """Audited as the request's change, or (no request: a command or a test) with the actor alone."""
    if request is not None:
        record_change(request, household, basis=basis, detail=detail)
    else:
        record_access(actor=by, object_type=household._meta.label_lower, object_id=household.pk, basis=basis,
                      action=AuditEvent.Action.CHANGE, detail=detail)


# --- the stored report (module docstring) ------------------------------------------------------------

INPUTS = ("household", "resident")  # maps.queries.LOGGED_INPUTS


@cache
def _code_version() -> str:
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]


def current_version(municipality_id: int) -> str:
    """The version of the report's inputs now: its code and one index lookup per input."""
    data = data_version(INPUTS, VersionContext(municipality_id=municipality_id, user_id=0))
    return f"{_code_version()}:{data}"


def _lock_scan_for_writing_pairs(municipality_id: int, *, exclusive: bool) -> None:
    """The stored pairs of a municipality change under this row lock: a refresh replaces them holding
    it exclusively; merges and judgements delete theirs holding it shared (they do not wait for each
    other)."""
    mode = "UPDATE" if exclusive else "SHARE"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT 1 FROM neighborhoods_duplicatescan WHERE municipality_id = %s FOR {mode}",  # noqa: S608 - a constant
                       [municipality_id])


_FORGET_HANDLED_SQL = """
DELETE FROM neighborhoods_possibleduplicatepair p
 WHERE p.municipality_id = %(municipality)s
   AND (EXISTS (SELECT 1 FROM neighborhoods_household h
                 WHERE h.id IN (p.first_id, p.second_id) AND h.merged_into_id IS NOT NULL)
        OR EXISTS (SELECT 1 FROM neighborhoods_distincthouseholds d
                    WHERE d.municipality_id = p.municipality_id AND d.first_id = p.first_id AND d.second_id = p.second_id))
"""


def refresh_possible_duplicates(*, municipality_id: int) -> DuplicateScan:
    """The stored pairs for the current version, computed now unless they already are. One refresh
    of a municipality at a time: a second waits, then finds the first's result. The version is read
    before the pairs: a write during the search makes the next read find them stale, never the
    reverse. Pairs merged or judged distinct while the search ran are left out once the pairs are
    written (after the scan row's lock, in statements that see those writes)."""
    DuplicateScan.objects.bulk_create([DuplicateScan(municipality_id=municipality_id)], ignore_conflicts=True)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                           [f"neighborhoods.duplicates:{municipality_id}"])
        version = current_version(municipality_id)
        scan = DuplicateScan.objects.get(municipality_id=municipality_id)
        if scan.computed_at is not None and scan.version == version:
            return scan
        started = time.perf_counter()
        found = find_possible_duplicates(municipality_id=municipality_id)
        _lock_scan_for_writing_pairs(municipality_id, exclusive=True)
        PossibleDuplicatePair.objects.filter(municipality_id=municipality_id).delete()
        PossibleDuplicatePair.objects.bulk_create(
            [PossibleDuplicatePair(municipality_id=municipality_id, position=position, **asdict(pair))
             for position, pair in enumerate(found)],
            batch_size=5000,
        )
        with connection.cursor() as cursor:
            cursor.execute(_FORGET_HANDLED_SQL, {"municipality": municipality_id})
        duration_ms = round((time.perf_counter() - started) * 1000)
        DuplicateScan.objects.filter(municipality_id=municipality_id).update(
            version=version, computed_at=timezone.now(), duration_ms=duration_ms, pairs=len(found),
        )
        scan.refresh_from_db()
    logger.info("possible duplicates of municipality %s: %s pairs in %s ms", municipality_id, len(found), duration_ms)
    return scan


def forget_stored_pairs(*, municipality_id: int, household_id: Any = None, pair: tuple[Any, Any] | None = None) -> int:
    """Delete from the stored report, in the caller's transaction, the pairs of a household merged
    away (`household_id`) or a pair judged distinct (`pair`, the smaller id first)."""
    _lock_scan_for_writing_pairs(municipality_id, exclusive=False)
    rows = PossibleDuplicatePair.objects.filter(municipality_id=municipality_id)
    if household_id is not None:
        rows = rows.filter(Q(first_id=household_id) | Q(second_id=household_id))
    elif pair is not None:
        rows = rows.filter(first_id=pair[0], second_id=pair[1])
    else:
        raise ValueError("give household_id or pair")
    deleted, _ = rows.delete()
    return deleted


@dataclass(frozen=True)
class StoredDuplicates:
    """The stored report for a reader: its pairs in order, and how fresh they are."""

    pairs: QuerySet[PossibleDuplicatePair]
    as_of: dt.datetime
    stale: bool
    refreshing: bool


def read_possible_duplicates(*, municipality_id: int) -> StoredDuplicates:
    """The report for a reader: stored, refreshed behind when its inputs changed (module docstring)."""
    version = current_version(municipality_id)
    scan = DuplicateScan.objects.filter(municipality_id=municipality_id).first()
    if scan is None or scan.computed_at is None:
        scan = refresh_possible_duplicates(municipality_id=municipality_id)
    elif scan.version != version and claim_refresh(DuplicateScan.objects.filter(pk=scan.pk), version):
        from django_q.tasks import async_task

        async_task("neighborhoods.duplicates_tasks.refresh_possible_duplicates_task", municipality_id,
                   group="duplicates-refresh")
        scan.refresh_from_db()
    assert scan.computed_at is not None
    stale = scan.version != version
    return StoredDuplicates(
        pairs=PossibleDuplicatePair.objects.filter(municipality_id=municipality_id).order_by("position"),
        as_of=scan.computed_at, stale=stale, refreshing=stale and scan.requested_version == version,
    )
