"""manage.py import_address_reference: load a municipality's address reference points (国土交通省
位置参照情報, デジタル庁 アドレス・ベース・レジストリ), then place its households that have no point.
The work is in addresses.reference (reading), addresses.services (writing) and addresses.placement."""

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from addresses.placement import place_households
from addresses.reference import KIND_NAMES
from addresses.services import ReferenceImport, load_reference
from neighborhoods.municipality_code import municipality_command
from neighborhoods.services import assign_households


class Command(BaseCommand):
    help = (
        "Load address reference points for one municipality from 位置参照情報 (街区レベル, 大字・町丁目レベル; "
        "CP932) and アドレス・ベース・レジストリ files (町字, 住居表示－街区, 住居表示－住居, each with its "
        "位置参照拡張; UTF-8), as CSV or as the downloaded .zip. Rows of other municipalities are skipped. "
        "Idempotent and all or nothing; then households without a point are placed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="+", help="CSV or zip files, any of the kinds above, in any order")
        parser.add_argument("--municipality", required=True, help="全国地方公共団体コード, e.g. 313726")
        parser.add_argument("--dry-run", action="store_true", help="read and report; write nothing")
        parser.add_argument("--no-place", dest="place", action="store_false",
                            help="load the reference only; do not place households")
        parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress lines")

    def handle(self, *args, **options) -> None:
        verbose = options["verbosity"] > 0
        progress = self.stdout.write if verbose and options["progress"] else None
        with municipality_command(options["municipality"]) as town, transaction.atomic():
            report = load_reference(municipality=town, paths=options["files"], progress=progress)
            placement = None
            if options["place"]:
                placement = place_households(municipality_id=town.id, progress=progress)
                if any(placement.changed.values()):
                    assign_households(municipality_id=town.id)
            if options["dry_run"]:
                transaction.set_rollback(True)
        if verbose:
            self._summary(report, placement, dry_run=options["dry_run"])

    def _summary(self, report: ReferenceImport, placement, *, dry_run: bool) -> None:
        out = self.stdout.write
        for file in report.read.files:
            out(f"{file.name}: {KIND_NAMES[file.kind]} ({file.encoding}), {file.rows} rows, "
                f"{file.mine} of this municipality, {file.other_municipalities} of other municipalities skipped")
        if report.read.without_point:
            out(f"ABR rows without a representative point (or a point without its row): {report.read.without_point}")
        if report.read.duplicates:
            out(f"rows giving a place another row already gave (the better one kept): {report.read.duplicates}")
        for level, counts in report.levels.items():
            out(f"{level}: {counts}")
        if placement is not None:
            changed = ", ".join(f"{level} {n}" for level, n in placement.changed.items() if n) or "none"
            out(f"households placed anew: {changed}; without a point: {placement.unmatched}")
        if dry_run:
            out(self.style.WARNING("dry run: nothing was written"))
        else:
            out(self.style.SUCCESS("import done"))
