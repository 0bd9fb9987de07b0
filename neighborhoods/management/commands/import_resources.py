"""manage.py import_resources: load a municipality's 社会資源 (サロン, 子ども食堂 …) from CSV, then
assign 自治会. The work is in neighborhoods.importers.resources; this only parses options and prints."""

from django.core.management.base import BaseCommand, CommandParser

from backend.csv_input import ENCODINGS
from neighborhoods.importers.resources import import_resources
from neighborhoods.municipality_code import municipality_command


class Command(BaseCommand):
    help = (
        "Import community resources (name/名称, type/種別, lat/緯度, lon/経度, opening_days) from CSV, upserting "
        "by name, then assign 自治会. All or nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("csv", help="resources CSV")
        parser.add_argument("--municipality", required=True, help="全国地方公共団体コード, e.g. 313726")
        parser.add_argument("--encoding", choices=ENCODINGS, default="auto")
        parser.add_argument("--dry-run", action="store_true", help="validate and report; write nothing")

    def handle(self, *args, **options) -> None:
        with municipality_command(options["municipality"]) as town:
            report = import_resources(
                municipality=town, path=options["csv"], encoding=options["encoding"], dry_run=options["dry_run"],
            )
        if options["verbosity"] == 0:
            return
        out = self.stdout.write
        out(f"{report.file} ({report.encoding}): resources {report.resources}")
        out(f"resources in no 自治会: {report.unassigned}")
        for name in report.unassigned_names:
            out(f"  {name}")
        if report.unassigned > len(report.unassigned_names):
            out(f"  … and {report.unassigned - len(report.unassigned_names)} more")
        out(f"自治会 assignment: {report.assignment.changed} households changed 自治会")
        out(self.style.WARNING("dry run: nothing was written") if report.dry_run else self.style.SUCCESS("import done"))
