"""manage.py import_users: a municipality's users from CSV, with one-time set-password links. The
reading and writing are in onboarding.users; this parses options, keeps the links file and prints."""

import csv
import os
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from backend.csv_input import ENCODINGS
from neighborhoods.municipality_code import municipality_command
from onboarding.users import IssuedLink, UserImport, import_users


class Command(BaseCommand):
    help = (
        "Create or update a municipality's users from CSV (UTF-8 or CP932; headers username,display_name,role,"
        "corporation,neighborhoods,email or ユーザー名,氏名,役割,法人コード,自治会コード,メール). All or nothing. New users "
        "have no password: a one-time set-password link is printed for each (and for every user who has not chosen "
        "one yet), or written to --links-file."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("csv", help="users CSV")
        parser.add_argument("--municipality", required=True, help="全国地方公共団体コード, e.g. 313726")
        parser.add_argument("--encoding", choices=ENCODINGS, default="auto")
        parser.add_argument(
            "--links-file", default=None,
            help="write the set-password links to this new file (mode 0600; an existing file is never overwritten) "
                 "instead of printing them",
        )
        parser.add_argument("--dry-run", action="store_true", help="validate and report; write nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        links_path = Path(options["links_file"]) if options["links_file"] else None
        if links_path is not None and (links_path.exists() or links_path.is_symlink()):
            raise CommandError(f"{links_path}: already exists; links are written to a new file only")
        with municipality_command(options["municipality"]) as town:
            report = import_users(municipality=town, path=options["csv"], encoding=options["encoding"],
                                  dry_run=options["dry_run"])
        self._summary(report)
        if report.links:
            if links_path is not None:
                _write_links(links_path, report.links)
                self.stdout.write(f"set-password links: {links_path}")
            else:
                self.stdout.write("set-password links (each works once; hand each only to its user):")
                for link in report.links:
                    self.stdout.write(f"  {link.username} ({link.display_name}) {link.url}  expires {timezone.localtime(link.expires_at):%Y-%m-%d %H:%M}")

    def _summary(self, report: UserImport) -> None:
        out = self.stdout.write
        out(f"{report.file} ({report.encoding}): {report.rows} rows")
        out(f"users: {len(report.created)} created, {len(report.updated)} updated, {len(report.unchanged)} unchanged")
        if report.dry_run:
            if report.needs_link:
                out(f"would issue set-password links for: {', '.join(report.needs_link)}")
            out(self.style.WARNING("dry run: nothing was written"))
        else:
            out(self.style.SUCCESS("import done"))


def _write_links(path: Path, links: list[IssuedLink]) -> None:
    """A new file only the operator can read (0600), refused if the path exists by now (O_EXCL)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise CommandError(f"{path}: cannot be created ({exc.strerror}); the users were imported: run again with "
                           "another --links-file for their links") from exc
    os.fchmod(fd, 0o600)  # whatever the umask
    with os.fdopen(fd, "w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(["username", "display_name", "set_password_url", "expires_at"])
        for link in links:
            writer.writerow([link.username, link.display_name, link.url, timezone.localtime(link.expires_at).isoformat()])
