"""Importing community resources (社会資源: サロン, 子ども食堂, 公民館 …) from CSV: upserted by name,
then placed in their 自治会. All or nothing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pghistory
from django.db import transaction

from backend.csv_input import CsvFile, ImportFailed, Problems, read_csv
from neighborhoods.importers.columns import map_columns, require
from neighborhoods.importers.household_merge import RESOURCES, Counts, merge
from neighborhoods.importers.household_reading import MappedRow, max_length
from neighborhoods.importers.locations import Coordinates, LonLat, ewkt, read_location
from neighborhoods.models import CommunityResource, Municipality, ResourceType, Weekday
from neighborhoods.services import AssignmentResult, assign_households

RESOURCE_TYPES = tuple(ResourceType.values)
WEEKDAYS = tuple(Weekday.values)
MAX_SHOWN_UNASSIGNED = 20

# Our field -> its usual Japanese headers.
RESOURCE_FIELDS: dict[str, tuple[str, ...]] = {
    "name": ("名称", "施設名"),
    "type": ("種別", "種類"),
    "lat": ("緯度", "latitude"),
    "lon": ("経度", "longitude", "lng"),
    "opening_days": ("開催曜日", "曜日"),
}
RESOURCE_REQUIRED = ("name", "type", "lat", "lon")


@dataclass(frozen=True)
class ResourceRow:
    line: int
    name: str
    type: str
    location: LonLat | None
    opening_days: list[str]

    def values(self) -> tuple[object, ...]:
        return (self.name, self.type, ewkt(self.location), self.opening_days)


def validate_resources(file: CsvFile) -> tuple[list[ResourceRow], Problems]:
    mapped = map_columns(file, known=RESOURCE_FIELDS, chosen={})
    require(mapped, RESOURCE_REQUIRED)
    problems = Problems(file.name)
    first_line: dict[str, int] = {}
    rows: list[ResourceRow] = []
    for raw in mapped.rows:
        row = MappedRow(raw, problems, mapped.labels)
        name = row.text("name", max_length=max_length(CommunityResource, "name"), required=True)
        if name in first_line:
            row.error("name", f"{name!r} is already on line {first_line[name]}")
        elif name:
            first_line[name] = raw.line
        resource = ResourceRow(
            line=raw.line,
            name=name,
            type=row.choice("type", RESOURCE_TYPES, required=True),
            location=read_location(row, Coordinates(), None, required=True),
            opening_days=row.choices("opening_days", WEEKDAYS),
        )
        if row.ok:
            rows.append(resource)
    return rows, problems


@dataclass
class ResourceImport:
    file: str
    encoding: str
    resources: Counts
    assignment: AssignmentResult
    unassigned: int  # resources in no 自治会
    unassigned_names: list[str]  # the first of them
    dry_run: bool = False


def import_resources(*, municipality: Municipality, path: str | Path, encoding: str = "auto",
                     dry_run: bool = False) -> ResourceImport:
    """Upsert community resources by name, then assign 自治会 (which also places the resources).
    All or nothing, like import_households."""
    file = read_csv(path, encoding=encoding)
    rows, problems = validate_resources(file)
    if problems:
        raise ImportFailed(problems.messages)
    with transaction.atomic(), pghistory.context(command="import_resources", file=file.name):
        counts = merge(RESOURCES, municipality.pk, [r.values() for r in rows], label="resources", progress=None)
        assignment = assign_households(municipality_id=municipality.pk)
        unassigned = CommunityResource.objects.filter(municipality=municipality, neighborhood__isnull=True)
        report = ResourceImport(
            file=file.name, encoding=file.encoding, resources=counts, assignment=assignment,
            unassigned=unassigned.count(), dry_run=dry_run,
            unassigned_names=list(unassigned.order_by("name").values_list("name", flat=True)[:MAX_SHOWN_UNASSIGNED]),
        )
        if dry_run:  # the report above is what a real run would do; now undo it
            transaction.set_rollback(True)
    return report
