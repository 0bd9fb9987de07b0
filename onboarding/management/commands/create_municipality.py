"""manage.py create_municipality: the first step of onboarding a municipality (the tenant).
The rules are in neighborhoods.municipality_code and onboarding.services; this parses and prints."""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backend.errors import TsunaguError
from onboarding.services import create_municipality


class Command(BaseCommand):
    help = (
        "Create a municipality from its 全国地方公共団体コード (6 digits, the check digit verified), its "
        "prefecture and name. Idempotent: the same code and names again change nothing; a different name "
        "for an existing code is refused unless --update."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("code", help="全国地方公共団体コード, 6 digits, e.g. 313726")
        parser.add_argument("--prefecture", required=True, help="e.g. 鳥取県 (must match the code's first two digits)")
        parser.add_argument("--name", required=True, help="e.g. 北栄町 (without prefecture or 郡)")
        parser.add_argument("--name-kana", default=None, help="the reading in katakana, e.g. ホクエイチョウ")
        parser.add_argument("--update", action="store_true", help="rename an existing municipality of this code")
        parser.add_argument("--dry-run", action="store_true", help="validate and report; write nothing")

    def handle(self, *args, **options) -> None:
        try:
            result = create_municipality(
                code=options["code"], prefecture=options["prefecture"], name=options["name"],
                name_kana=options["name_kana"], update=options["update"], dry_run=options["dry_run"],
            )
        except TsunaguError as exc:
            raise CommandError(exc.message) from exc
        town = result.municipality
        for code in result.same_name:
            self.stderr.write(self.style.WARNING(
                f"warning: {code} is also named {town.prefecture}{town.name}; check that {town.code} is the right code"
            ))
        if options["verbosity"] == 0:
            return
        label = f"{town.code} {town.prefecture}{town.name}{f' ({town.name_kana})' if town.name_kana else ''}"
        if result.outcome == "unchanged":
            self.stdout.write(f"unchanged: {label}")
            return
        would = "would be " if result.dry_run else ""
        self.stdout.write(f"{would}{result.outcome}: {label}")
        for field, (before, after) in result.changes.items():
            self.stdout.write(f"  {field}: {before!r} → {after!r}")
        if result.dry_run:
            self.stdout.write(self.style.WARNING("dry run: nothing was written"))
