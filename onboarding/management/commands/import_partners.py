"""manage.py import_partners: a municipality's partner corporations (アウトリーチ受託法人) from CSV.
The file's rules are in onboarding.partners, the writes in onboarding.services; this parses and prints."""

from django.core.management.base import BaseCommand, CommandParser

from backend.csv_input import ENCODINGS
from neighborhoods.municipality_code import municipality_command
from onboarding.services import PartnerImport, import_partners

MAX_SHOWN = 50


class Command(BaseCommand):
    help = (
        "Import partner corporations from CSV (code,name,address,lat,lon,phone,contact_person or "
        "法人コード,法人名,事業所住所,緯度,経度,電話番号,担当者; UTF-8 or CP932), upserting by code. "
        "All or nothing; unchanged rows are not written."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("csv", help="partners CSV")
        parser.add_argument("--municipality", required=True, help="全国地方公共団体コード, e.g. 313726")
        parser.add_argument("--encoding", choices=ENCODINGS, default="auto")
        parser.add_argument("--dry-run", action="store_true", help="validate and report; write nothing")

    def handle(self, *args, **options) -> None:
        with municipality_command(options["municipality"]) as town:
            report = import_partners(
                municipality=town, path=options["csv"], encoding=options["encoding"], dry_run=options["dry_run"],
            )
        if options["verbosity"] > 0:
            self._summary(report)

    def _summary(self, report: PartnerImport) -> None:
        out = self.stdout.write
        would = "would be " if report.dry_run else ""
        out(f"{report.file} ({report.encoding}): {len(report.created)} {would}created, "
            f"{len(report.updated)} {would}updated, {len(report.unchanged)} unchanged")
        for code in report.created[:MAX_SHOWN]:
            out(f"  + {code}")
        for code, fields in list(report.updated.items())[:MAX_SHOWN]:
            out(f"  ~ {code}: {', '.join(fields)}")
        if report.not_in_file:
            out(f"not in the file, left as they are: {', '.join(report.not_in_file)}")
        out(self.style.WARNING("dry run: nothing was written") if report.dry_run else self.style.SUCCESS("import done"))
