"""Everything `make run` needs before the processes start, in one process (each manage.py start
costs seconds): migrate, the cache table, static files, and the demo data unless it is loaded."""

from django.core.management import call_command
from django.core.management.base import BaseCommand

from demo.towns import DEMO_MUNICIPALITIES


class Command(BaseCommand):
    help = "Migrate, create the cache table, collect static files and load the demo data if missing."

    def add_arguments(self, parser):
        parser.add_argument("--no-demo", action="store_true", help="do not load the demo data")
        parser.add_argument("--reload-demo", action="store_true", help="load the demo data even if present")
        parser.add_argument("--banner", default=None, help="write the start banner (URLs, logins) to this file")
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="the URL the banner shows")

    def handle(self, *args, no_demo: bool, reload_demo: bool, banner: str | None, url: str, **options):
        # Schema work as the owner; everything after it as the application's role.
        call_command("migrate", interactive=False, verbosity=0, database="owner")
        call_command("createcachetable", verbosity=0, database="owner")
        call_command("collectstatic", interactive=False, verbosity=0)
        if not no_demo and (reload_demo or not self._demo_loaded()):
            call_command("load_demo")
        if banner:
            with open(banner, "w", encoding="utf-8") as out:
                call_command("demo_banner", url=url, stdout=out)

    @staticmethod
    def _demo_loaded() -> bool:
        from backend.tenancy import scope
        from neighborhoods.models import Household, Municipality
        from visits.models import Campaign

        town = Municipality.objects.filter(code=DEMO_MUNICIPALITIES[0]["code"]).first()
        if town is None:
            return False
        with scope(town.id):
            return Household.objects.exists() and Campaign.objects.exists()
