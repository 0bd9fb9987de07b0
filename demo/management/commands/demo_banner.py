from django.conf import settings
from django.core.management.base import BaseCommand

from accounts.models import User
from backend.tenancy import municipality_ids, scope
from demo.towns import DEMO_USERNAMES


class Command(BaseCommand):
    help = "Print where the running server is and how to log in (used by `make run`)."
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000")

    def handle(self, *args, url: str, **options):
        url = url.rstrip("/")
        lines = [
            "",
            "つなぐ is running.",
            f"  API             {url}/api/v1/",
            f"  API docs        {url}/api/v1/docs",
            f"  health          {url}/api/v1/health",
            f"  map             {url}/map/   (the supervisors' coverage map)",
            f"  reports         {url}/reports/   (the 年度 report: charts, tables, CSV/Excel exports)",
            f"  admin           {url}/admin/   (platform operators only: manage.py createsuperuser)",
        ]
        existing: set[str] = set()
        for municipality_id in municipality_ids():  # each in its own tenant scope (row-level security)
            with scope(municipality_id):
                existing |= set(
                    User.objects.filter(username__in=DEMO_USERNAMES.values()).values_list("username", flat=True)
                )
        if existing:
            lines.append(f"  demo logins     (password: {settings.TSUNAGU_DEMO_PASSWORD})")
            for role, username in DEMO_USERNAMES.items():
                if username in existing:
                    lines.append(f"    {username:<20} {role}")
        lines += [
            "  get a token     curl -s -X POST " + url + "/api/v1/auth/token -H 'Content-Type: application/json' \\",
            "                    -d '{\"username\":\"demo-coordinator\",\"password\":\"" + settings.TSUNAGU_DEMO_PASSWORD
            + "\",\"device_name\":\"laptop\"}'",
            "  stop            make stop",
            "",
        ]
        self.stdout.write("\n".join(lines))
