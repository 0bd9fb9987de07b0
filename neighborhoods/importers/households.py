"""Import households (世帯) and residents (世帯員) from the CSV files that municipal systems export.

The steps, each in its own module:

- reading (backend.csv_input): bytes -> text (UTF-8 with or without BOM, or CP932) -> rows that
  know their line number;
- columns (columns.py): the file's headers -> our fields (Japanese headers recognised, or the
  operator's `--column` / mapping file); 個人番号 and 住民票コード columns are never read;
- validation (household_reading.py): every value normalised (全角/半角, kana, 和暦) and checked,
  every problem collected as `file:line: column: message`;
- merging (household_merge.py): one INSERT … ON CONFLICT per batch; then households without a
  point are placed from their address (addresses.placement) and every household is put in its
  自治会 (neighborhoods.services.assign_households). All in one transaction: all or nothing.

An import never deletes: households or residents missing from the file are left as they are.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import pghistory
from django.db import transaction

from addresses.placement import PlacementResult, place_households
from backend.csv_input import ImportFailed, Problems, read_csv
from backend.errors import InvalidInput
from neighborhoods.duplicates import PossibleDuplicate, find_possible_duplicates
from neighborhoods.importers.columns import (
    HOUSEHOLDS_FILE_FIELDS,
    RESIDENT_FILE_FIELDS,
    ColumnMapping,
    MappedFile,
    map_columns,
    require,
)
from neighborhoods.importers.household_merge import (
    HOUSEHOLDS,
    RESIDENTS,
    Counts,
    Progress,
    merge,
    pair_residents,
)
from neighborhoods.importers.household_reading import (
    HOUSEHOLD_REQUIRED,
    RESIDENT_REQUIRED,
    HouseholdReading,
    ResidentRow,
    read_households,
    read_residents,
    resident_columns,
)
from neighborhoods.importers.locations import Coordinates
from neighborhoods.models import Household, Municipality
from neighborhoods.services import AssignmentResult, assign_households

MAX_SHOWN_UNASSIGNED = 20


@dataclass
class HouseholdImport:
    file: str
    encoding: str
    rows_read: int
    households: Counts
    residents: Counts | None
    residents_file: str | None
    skipped: list[str]  # the problems of the rows left out with skip_invalid
    placement: PlacementResult
    assignment: AssignmentResult
    unassigned: list[tuple[str, str]] = field(default_factory=list)  # first (external_id, address)
    # pairs of households that may be one (same address in one spelling, similar name): reported,
    # never merged here; a coordinator merges or marks them distinct through the API
    duplicates: list[PossibleDuplicate] = field(default_factory=list)
    repeated_names: int = 0  # (household, name) pairs listed more than once
    ignored_columns: list[str] = field(default_factory=list)  # 個人番号 / 住民票コード columns, never read
    dry_run: bool = False


@dataclass
class _Plan:
    """Everything read and validated, before the database is written."""

    households: HouseholdReading
    residents: list[ResidentRow] | None = None
    resident_columns: tuple[str, ...] = ()
    resident_problems: Problems | None = None

    @property
    def problems(self) -> list[str]:
        return [*self.households.problems.messages, *(self.resident_problems.messages if self.resident_problems else [])]


def _mapped(path: str | Path, *, encoding: str, known: dict[str, tuple[str, ...]], chosen: dict[str, str],
            sources: dict[str, str], required: tuple[str, ...]) -> MappedFile:
    mapped = map_columns(read_csv(path, encoding=encoding), known=known, chosen=chosen, sources=sources)
    require(mapped, required)
    return mapped


def import_households(
    *, municipality: Municipality, path: str | Path, residents_path: str | Path | None = None,
    encoding: str = "auto", coords: Coordinates | None = None, mapping: ColumnMapping | None = None,
    skip_invalid: bool = False, dry_run: bool = False, progress: Progress | None = None,
) -> HouseholdImport:
    """Upsert the households (and residents) of the files, place those without a point, then
    assign 自治会. All or nothing: with any invalid row, ImportFailed lists every problem and
    nothing is written, unless `skip_invalid`, which writes the valid rows and reports the others."""
    coords = coords or Coordinates()
    mapping = mapping or ColumnMapping()
    chosen = {**mapping.households, **coords.mapping()}
    sources = {ours: where for (table, ours), where in mapping.source.items() if table == "columns"}
    sources.update({ours: "--x-field/--y-field/--lat-field/--lon-field" for ours in coords.mapping()})
    # Locations are optional, so the coordinate columns may be absent, unless the operator named them.
    required = (*HOUSEHOLD_REQUIRED, *(coords.fields if coords.explicit else ()))
    file = _mapped(path, encoding=encoding, known=HOUSEHOLDS_FILE_FIELDS, chosen=chosen, sources=sources, required=required)
    if progress:
        progress(f"{file.name}: {len(file.rows)} rows read ({file.file.encoding})")
    plan = _Plan(households=read_households(file, coords, municipality))
    residents_file = None
    if residents_path is not None:
        if plan.households.per_person:
            raise InvalidInput(f"{file.name} has one row per person (a name column): its residents come from it; "
                               f"give no --residents file")
        residents_file = _mapped(
            residents_path, encoding=encoding, known=RESIDENT_FILE_FIELDS, chosen=mapping.residents,
            sources={ours: where for (table, ours), where in mapping.source.items() if table == "residents"},
            required=RESIDENT_REQUIRED,
        )
        if progress:
            progress(f"{residents_file.name}: {len(residents_file.rows)} rows read ({residents_file.file.encoding})")
    elif plan.households.per_person:
        plan.residents, plan.resident_columns = plan.households.residents, plan.households.resident_columns
    with transaction.atomic(), pghistory.context(command="import_households", file=file.name):
        if residents_file is not None:
            existing = set(Household.objects.filter(municipality=municipality).values_list("external_id", flat=True))
            plan.residents, plan.resident_problems = read_residents(residents_file, plan.households, existing)
            plan.resident_columns = resident_columns(residents_file.fields)
        if plan.problems and not skip_invalid:
            raise ImportFailed(plan.problems)
        report = _write(municipality, file, plan, progress)
        report.residents_file = residents_file.name if residents_file else None
        report.ignored_columns = [*file.ignored_never_read, *(residents_file.ignored_never_read if residents_file else ())]
        report.dry_run = dry_run
        if dry_run:  # the report above is what a real run would do; now undo it
            transaction.set_rollback(True)
    return report


def _write(municipality: Municipality, file: MappedFile, plan: _Plan, progress: Progress | None) -> HouseholdImport:
    table = dataclasses.replace(HOUSEHOLDS, owned=plan.households.columns)
    households = merge(table, municipality.pk, [h.values() for h in plan.households.rows],
                       label="households", progress=progress)
    households.skipped = len(plan.households.problems.lines)
    residents: Counts | None = None
    same_names = 0
    if plan.residents is not None:
        live = Household.objects.filter(municipality=municipality, merged_into__isnull=True)
        ids = dict(live.values_list("external_id", "id"))
        rows = [r for r in plan.residents if r.household_external_id in ids]
        staged, same_names = pair_residents(rows, ids, municipality, plan.resident_columns)
        residents = merge(RESIDENTS, municipality.pk, staged, label="residents", progress=progress)
        residents.merged = len(plan.residents) - len(rows)
        residents.skipped = len(plan.resident_problems.lines) if plan.resident_problems else 0
    placement = place_households(municipality_id=municipality.pk, progress=progress)
    assignment = assign_households(municipality_id=municipality.pk)
    unassigned = Household.objects.filter(
        municipality=municipality, neighborhood__isnull=True, merged_into__isnull=True
    ).order_by("external_id")
    return HouseholdImport(
        file=file.name, encoding=file.file.encoding, rows_read=len(file.rows), households=households,
        residents=residents, residents_file=None, skipped=plan.problems, placement=placement,
        assignment=assignment, repeated_names=same_names,
        unassigned=list(unassigned.values_list("external_id", "address")[:MAX_SHOWN_UNASSIGNED]),
        duplicates=find_possible_duplicates(municipality_id=municipality.pk),
    )
