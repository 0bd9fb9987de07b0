"""Merging validated rows into the database, set-based: rows are streamed with COPY into a
temporary table and merged with one `INSERT … ON CONFLICT … DO UPDATE … WHERE … IS DISTINCT FROM`
per batch. Unchanged rows are not written (their version, updated_at, xmin and history stay as
they were); changed rows get version + 1 and updated_at = now().

No advisory lock: ON CONFLICT is safe when two imports insert the same new keys at once (the
second waits for the first's row, then takes the update path and finds nothing to change). The
update path also locks every conflicting row, changed or not, until the transaction ends, so two
imports of one file meet there and the second reads the first's residents before pairing its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import Field, Model, UUIDField

from neighborhoods.importers.household_reading import HOUSEHOLD_COLUMNS, RESIDENT_COLUMNS, ResidentRow
from neighborhoods.models import CommunityResource, Household, Municipality, Resident

BATCH_SIZE = 2000
Progress = Callable[[str], None]


@dataclass
class Counts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    merged: int = 0  # rows of households a coordinator merged into another: left alone

    def __str__(self) -> str:
        text = f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged, {self.skipped} skipped"
        return f"{text}, {self.merged} left alone (merged into another household)" if self.merged else text


@dataclass(frozen=True)
class Table:
    """How one model is merged. Rows are matched on `conflict` (its unique constraint's columns;
    `municipality_id` is given by the import, not the file); `key` + `columns` are what the file
    gives, in the order of the staged values; `owned` are the columns a re-import may change
    (default: all of `columns`); `update` overrides the value a column is updated to (default
    `EXCLUDED.column`); `guard` is an extra condition on the existing row `t`. Anything else
    (a household's 自治会, …) is left alone. `versioned` models get version + 1 on real change."""

    model: type[Model]
    key: tuple[str, ...]
    columns: tuple[str, ...]
    conflict: tuple[str, ...]
    owned: tuple[str, ...] | None = None
    update: dict[str, str] = field(default_factory=dict)
    guard: str | None = None
    versioned: bool = False

    @property
    def name(self) -> str:
        return self.model._meta.db_table

    @property
    def fields(self) -> tuple[str, ...]:
        return (*self.key, *self.columns)

    def on_change(self) -> dict[str, str]:
        """column -> SQL expression, set only on rows that really changed."""
        exprs = {
            f.column: "now()" for f in self.model._meta.concrete_fields
            if f.column is not None and getattr(f, "auto_now", False)  # a concrete field has a column
        }
        if self.versioned:
            exprs["version"] = "t.version + 1"
        return exprs

    def on_insert(self) -> tuple[dict[str, str], dict[str, Any]]:
        """column -> SQL expression for the columns the file does not give, and their parameters.
        Raw SQL skips Django's Python-side defaults, so they are read off the model here: a field
        added later with a default keeps working without touching this module."""
        given = {"municipality_id", *self.fields}
        exprs: dict[str, str] = {}
        params: dict[str, Any] = {}  # values as get_db_prep_save gives them to the driver
        for f in self.model._meta.concrete_fields:
            if f.column is None or f.column in given:  # (a concrete field has a column)
                continue
            if f.primary_key:
                if isinstance(f, UUIDField):
                    exprs[f.column] = "gen_random_uuid()"
                continue  # an identity column numbers itself
            if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
                exprs[f.column] = "now()"
            elif f.has_default() or not f.null:
                value = f.get_default()  # "" for a blank text field without a default
                if value is None:
                    continue  # nullable, or a database default: the database decides
                params[f"default_{f.column}"] = f.get_db_prep_save(value, connection)
                exprs[f.column] = f"CAST(%(default_{f.column})s AS {f.db_type(connection)})"
        return exprs, params

    def sql(self) -> tuple[str, dict[str, Any]]:
        """The merge of the staged rows, answering one boolean per written row: created?"""
        owned = self.columns if self.owned is None else self.owned
        defaults, params = self.on_insert()
        new = [self.update.get(c, f"EXCLUDED.{c}") for c in owned]
        assignments = [*(f"{c} = {e}" for c, e in zip(owned, new, strict=True)),
                       *(f"{c} = {e}" for c, e in self.on_change().items())]
        changed = f"({', '.join(f't.{c}' for c in owned)}) IS DISTINCT FROM ({', '.join(new)})"
        # Table and column names come from the Table constants, never from a file; values travel
        # as COPY data or bound parameters.
        sql = (
            f"INSERT INTO {self.name} AS t (municipality_id, {', '.join([*self.fields, *defaults])})\n"
            f"SELECT %(municipality)s, {', '.join([*(f's.{c}' for c in self.fields), *defaults.values()])}\n"
            f"  FROM {STAGING} AS s\n"
            f"ON CONFLICT ({', '.join(self.conflict)}) DO UPDATE SET {', '.join(assignments)}\n"
            f" WHERE {changed}{f' AND {self.guard}' if self.guard else ''}\n"
            f"RETURNING (t.xmax = 0)"
        )
        return sql, params


_STAGING_NAME = "tsunagu_import_rows"
STAGING = f"pg_temp.{_STAGING_NAME}"  # qualified, so a real table of that name is never touched

# A row with coordinates sets the point (match level: coordinates); a row without never clears
# one (it may have been placed from its address or by hand) and leaves its match level alone.
HOUSEHOLDS = Table(
    Household, key=("external_id",), columns=HOUSEHOLD_COLUMNS, conflict=("municipality_id", "external_id"),
    update={
        "location": "COALESCE(EXCLUDED.location, t.location)",
        "match_level": "CASE WHEN EXCLUDED.location IS NULL THEN t.match_level ELSE EXCLUDED.match_level END",
    },
    guard="t.merged_into_id IS NULL",  # a household merged by a coordinator is not revived by a list
    versioned=True,
)
# Residents are paired with existing ones in Python (pair_residents), so they are merged on their id.
RESIDENT_KEYED = ("id", "household_id", "name")
RESIDENTS = Table(Resident, key=RESIDENT_KEYED, columns=RESIDENT_COLUMNS, conflict=("id",), versioned=True)
RESOURCES = Table(CommunityResource, key=("name",), columns=("type", "location", "opening_days"),
                  conflict=("municipality_id", "name"))


def merge(table: Table, municipality_id: int, rows: Sequence[tuple[object, ...]], *,
          label: str, progress: Progress | None) -> Counts:
    """Stage `rows` (table.fields, in order) with COPY and merge them batch by batch."""
    counts = Counts()
    sql, default_params = table.sql()
    params = {"municipality": municipality_id, **default_params}
    fields = ", ".join(table.fields)
    with connection.cursor() as cursor:
        if table.guard is not None:
            guarded = _guarded(cursor, table, municipality_id)
            counts.merged = sum(1 for values in rows if tuple(values[: len(table.key)]) in guarded)
        # The staging table copies the target's column types (geometry(Point,4326), varchar[] …),
        # so the comparison and the insert need no casts. Dropped first because pytest (or a caller)
        # may run two imports inside one outer transaction.
        cursor.execute(f"DROP TABLE IF EXISTS {STAGING}")
        cursor.execute(
            f"CREATE TEMP TABLE {_STAGING_NAME} ON COMMIT DROP AS "  # noqa: S608
            f"SELECT {fields} FROM {table.name} WITH NO DATA"
        )
        for start in range(0, len(rows), BATCH_SIZE):
            batch = rows[start : start + BATCH_SIZE]
            cursor.execute(f"TRUNCATE {STAGING}")
            with cursor.copy(f"COPY {STAGING} ({fields}) FROM STDIN") as copy:
                for values in batch:
                    copy.write_row(values)
            cursor.execute(sql, dict(params))
            for (created,) in cursor.fetchall():
                if created:
                    counts.created += 1
                else:
                    counts.updated += 1
            if progress:
                progress(f"{label}: {start + len(batch)}/{len(rows)} written")
        cursor.execute(f"DROP TABLE {STAGING}")
    counts.unchanged = len(rows) - counts.created - counts.updated - counts.merged
    return counts


def _guarded(cursor: Any, table: Table, municipality_id: int) -> set[tuple[object, ...]]:
    """The keys of the rows the guard leaves alone (few: households merged into others), read once
    per import rather than joined per batch, for the report."""
    cursor.execute(
        f"SELECT {', '.join(f't.{k}' for k in table.key)} FROM {table.name} AS t "  # noqa: S608
        f"WHERE t.municipality_id = %(municipality)s AND NOT ({table.guard})",
        {"municipality": municipality_id},
    )
    return {tuple(row) for row in cursor.fetchall()}


# ---------------------------------------------------------------------------------------------
# Residents: which existing resident each row is


@dataclass(frozen=True)
class _Existing:
    id: uuid.UUID
    birth_year: int | None
    data: tuple[object, ...]


def pair_residents(rows: Sequence[ResidentRow], household_ids: dict[str, uuid.UUID], municipality: Municipality,
                   columns: tuple[str, ...]) -> tuple[list[tuple[object, ...]], int]:
    """The staging rows for `rows` (RESIDENTS.fields), each with the id of the resident it updates
    (or a new id), and how many names occur more than once within one household. `columns`: the
    resident columns the file owns; the others are staged with their existing values (or, for a
    new resident, the model's defaults), so that they do not change.

    A resident is the same person when household and name match. Where a name occurs more than
    once in a household, identical records are paired first (so an unchanged file changes
    nothing, whatever its order), then the same birth year (a corrected relation or flags), then
    in order of birth (a corrected birth year)."""
    all_columns = RESIDENTS.columns
    owned = [all_columns.index(c) for c in columns]
    existing: dict[tuple[uuid.UUID, str], list[_Existing]] = {}
    query = Resident.objects.filter(municipality=municipality, household_id__in=set(household_ids.values()))
    query = query.order_by("household_id", "name", "birth_year", "created_at", "id")
    for rid, hid, name, *data in query.values_list("id", "household_id", "name", *all_columns):
        existing.setdefault((hid, name), []).append(_Existing(rid, data[all_columns.index("birth_year")], tuple(data)))
    incoming: dict[tuple[uuid.UUID, str], list[ResidentRow]] = {}
    for row in rows:
        incoming.setdefault((household_ids[row.household_external_id], row.name), []).append(row)
    new_resident = tuple(_default(c) for c in all_columns)
    staged: list[tuple[object, ...]] = []
    for (hid, name), group in incoming.items():
        candidates = existing.get((hid, name), [])
        by_id = {old.id: old.data for old in candidates}
        for row, rid in zip(group, _pair(group, candidates, owned), strict=True):
            values = list(by_id.get(rid, new_resident))
            for i in owned:
                values[i] = row.data[i]
            staged.append((rid, hid, name, *values))
    return staged, sum(1 for group in incoming.values() if len(group) > 1)


def _default(name: str) -> object:
    model_field = Resident._meta.get_field(name)
    assert isinstance(model_field, Field)
    return model_field.get_default()


def _pair(group: Sequence[ResidentRow], candidates: Sequence[_Existing], owned: list[int]) -> list[uuid.UUID]:
    if len(group) == 1 and len(candidates) == 1:  # by far the usual case: one person of that name
        return [candidates[0].id]
    free = list(candidates)
    ids: list[uuid.UUID | None] = [None] * len(group)
    rules: tuple[Callable[[ResidentRow, _Existing], bool], ...] = (
        lambda row, old: all(row.data[i] == old.data[i] for i in owned),
        lambda row, old: row.birth_year == old.birth_year,
        lambda row, old: True,
    )
    for same in rules:
        for i, row in enumerate(group):
            match = next((old for old in free if same(row, old)), None) if ids[i] is None else None
            if match is not None:
                ids[i] = match.id
                free.remove(match)
    return [i or uuid.uuid4() for i in ids]
