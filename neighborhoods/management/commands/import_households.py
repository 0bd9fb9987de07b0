"""manage.py import_households: load a municipality's 世帯 (and 世帯員) from CSV, then assign 自治会.
The work is in neighborhoods.importers (households.py and the modules it names); this only parses
options and prints."""

from django.core.management.base import BaseCommand, CommandParser

from backend.csv_input import ENCODINGS, format_problems
from neighborhoods.importers.columns import ColumnMapping
from neighborhoods.importers.households import MAX_SHOWN_UNASSIGNED, HouseholdImport, import_households
from neighborhoods.importers.locations import WGS84, Coordinates
from neighborhoods.municipality_code import municipality_command


class Command(BaseCommand):
    help = (
        "Import households (external_id/世帯番号, address/住所, 方書, address_kana, lat/緯度, lon/経度, "
        "member_count/世帯人数, status, living_arrangement, risk_flags) and residents (in the same file, one row "
        "per person with 氏名/カナ/生年月日/続柄, or in --residents) from CSV (UTF-8 or Shift_JIS/CP932), "
        "upserting by external_id; place households without a point from their address, then assign "
        "each to its 自治会. Other headers: --column or --mapping. All or nothing unless --skip-invalid."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("csv", help="households CSV")
        parser.add_argument("--municipality", required=True, help="全国地方公共団体コード, e.g. 313726")
        parser.add_argument("--residents", default=None, help="residents CSV (household_external_id,name,kana,birth_year,relation,flags)")
        parser.add_argument("--encoding", choices=ENCODINGS, default="auto")
        parser.add_argument(
            "--column", action="append", default=[], metavar="OURS=THEIRS",
            help="which column of the households file holds one of our fields, e.g. external_id=世帯コード (repeatable)",
        )
        parser.add_argument(
            "--mapping", default=None, metavar="FILE",
            help='TOML mapping file: [columns] ours = "theirs" (households file), [residents] (residents file)',
        )
        parser.add_argument("--srid", type=int, default=WGS84, help="EPSG code of --x-field/--y-field (e.g. 6673)")
        parser.add_argument("--lat-field", default=None, help="latitude column (default: lat)")
        parser.add_argument("--lon-field", default=None, help="longitude column (default: lon)")
        parser.add_argument("--x-field", default=None, help="easting column, in --srid (default: x)")
        parser.add_argument("--y-field", default=None, help="northing column, in --srid (default: y)")
        parser.add_argument("--skip-invalid", action="store_true", help="write the valid rows, report the others")
        parser.add_argument("--dry-run", action="store_true", help="validate and report; write nothing")
        parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress lines")

    def handle(self, *args, **options) -> None:
        verbose = options["verbosity"] > 0
        with municipality_command(options["municipality"]) as town:
            mapping = ColumnMapping.from_options(columns=options["column"], mapping_file=options["mapping"])
            report = self._import(town, mapping, options, verbose)
        if verbose:
            self._summary(report)

    def _import(self, town, mapping: ColumnMapping, options, verbose: bool) -> HouseholdImport:
        return import_households(
            municipality=town,
            path=options["csv"],
            residents_path=options["residents"],
            encoding=options["encoding"],
            coords=Coordinates.from_options(
                lat_field=options["lat_field"], lon_field=options["lon_field"],
                x_field=options["x_field"], y_field=options["y_field"], srid=options["srid"],
            ),
            mapping=mapping,
            skip_invalid=options["skip_invalid"],
            dry_run=options["dry_run"],
            progress=self.stdout.write if verbose and options["progress"] else None,
        )

    def _summary(self, report: HouseholdImport) -> None:
        out = self.stdout.write
        if report.skipped:
            self.stderr.write(format_problems(report.skipped, "those rows were skipped"))
        out(f"{report.file} ({report.encoding}): {report.rows_read} rows")
        for column in report.ignored_columns:
            out(f"column {column!r} ignored: 個人番号 and 住民票コード are never read or stored")
        out(f"households: {report.households}")
        if report.residents is not None:
            source = f" ({report.residents_file})" if report.residents_file else ""  # else: the households file
            out(f"residents{source}: {report.residents}")
            if report.repeated_names:
                out(f"  {report.repeated_names} names occur more than once in one household (each matched one to one)")
        placement = report.placement
        if placement.changed:
            levels = ", ".join(f"{level} {count}" for level, count in placement.changed.items())
            out(f"placed from their address: {levels}")
        out(f"households without a point (unmatched): {placement.unmatched}")
        assignment = report.assignment
        out(f"自治会 assignment: {assignment.changed} households changed 自治会")
        out(f"households in no 自治会: {assignment.unassigned}")
        for external_id, address in report.unassigned:
            out(f"  {external_id} {address}")
        if assignment.unassigned > MAX_SHOWN_UNASSIGNED:
            out(f"  … and {assignment.unassigned - MAX_SHOWN_UNASSIGNED} more")
        if report.duplicates:
            pairs = "1 pair" if len(report.duplicates) == 1 else f"{len(report.duplicates)} pairs"
            out(f"possible duplicate households: {pairs} (same address, similar name; "
                "merge them or mark them distinct: GET /api/v1/households/duplicates)")
            for pair in report.duplicates[:MAX_SHOWN_UNASSIGNED]:
                out(f"  {pair.first_external_id} {pair.first_name} / {pair.second_external_id} {pair.second_name}: "
                    f"{pair.address_normalized} ({pair.reason})")
            if len(report.duplicates) > MAX_SHOWN_UNASSIGNED:
                out(f"  … and {len(report.duplicates) - MAX_SHOWN_UNASSIGNED} more")
        if report.dry_run:
            out(self.style.WARNING("dry run: nothing was written"))
        else:
            out(self.style.SUCCESS("import done"))
