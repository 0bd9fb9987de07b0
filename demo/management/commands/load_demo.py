"""Onboard the demo towns (北栄町 model, and Okinawa City's 自治会) exactly as a real municipality is
onboarded: create_municipality, then import_boundaries, import_address_reference, import_partners,
import_users, import_households and import_resources on the files in fixtures/. Then what a town
has after a while: the 世帯訪問調査票, a running campaign, a 支え愛連絡会 with concerns and cases.
Safe to run again: every step keeps or updates what exists."""

import datetime as dt
import io
import json
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from backend.dates import fiscal_year_bounds, fiscal_year_of
from backend.tenancy import scope
from demo.towns import DEMO_MUNICIPALITIES, DEMO_USERNAMES, FIXTURES
from neighborhoods.models import Household, Municipality, Neighborhood
from outreach import services as outreach
from outreach.models import Meeting
from visits import services as visit_services
from visits.forms import publish_form
from visits.models import Campaign, PartnerOrganization, SurveyForm


class Command(BaseCommand):
    help = "Onboard the demo towns from fixtures/ through the onboarding and import commands, then add a campaign and outreach."

    def add_arguments(self, parser):
        parser.add_argument("--password", default=None, help="demo password (default: TSUNAGU_DEMO_PASSWORD)")

    def handle(self, *args, password: str | None, **options):
        if settings.PRODUCTION:
            raise CommandError("load_demo refuses to run with TSUNAGU_ENV=production: demo accounts never exist there.")
        password = password or settings.TSUNAGU_DEMO_PASSWORD
        for spec in DEMO_MUNICIPALITIES:
            self._onboard(spec, FIXTURES / spec["folder"])
        hokuei = Municipality.objects.get(code=DEMO_MUNICIPALITIES[0]["code"])
        with scope(hokuei.id):  # row-level security: written as the application, for this town
            self._demo_passwords(hokuei, password)
            self._demo_form(hokuei, FIXTURES / "hokuei" / "survey_form.json")
            self._demo_campaign(hokuei)
            self._demo_outreach(hokuei)
        self.stdout.write(self.style.SUCCESS("demo data loaded"))

    def _onboard(self, spec: dict, folder: Path) -> None:
        """The commands a municipality's IT person runs, in the README's order, on the town's files."""
        code = spec["code"]
        quiet = {"verbosity": 0, "stdout": io.StringIO()}
        call_command("create_municipality", code, prefecture=spec["prefecture"], name=spec["name"],
                     name_kana=spec["name_kana"], **quiet)
        if (folder / "neighborhoods.geojson").exists():
            call_command(
                "import_boundaries", str(folder / "neighborhoods.geojson"), municipality=code,
                name_field="name", code_field="code", kana_field="kana",
                district_field="district", area_field="area", **quiet,
            )
        references = sorted(str(p) for p in (folder / "address_reference").glob("*.csv"))
        if references:
            call_command("import_address_reference", *references, municipality=code, **quiet)
        if (folder / "partners.csv").exists():
            call_command("import_partners", str(folder / "partners.csv"), municipality=code, **quiet)
        if (folder / "users.csv").exists():
            # The set-password links it prints are dropped: demo accounts get the demo password below.
            call_command("import_users", str(folder / "users.csv"), municipality=code, **quiet)
        if (folder / "households.csv").exists():
            residents = folder / "residents.csv"
            call_command(
                "import_households", str(folder / "households.csv"), municipality=code,
                residents=str(residents) if residents.exists() else None, progress=False, **quiet,
            )
        if (folder / "resources.csv").exists():
            call_command("import_resources", str(folder / "resources.csv"), municipality=code, **quiet)

    @transaction.atomic
    def _demo_passwords(self, town: Municipality, password: str) -> None:
        """Imported accounts have no usable password until their set-password link is used; in the
        demo every account of the town gets the demo password instead (once: a password someone
        set later is kept)."""
        for user in User.objects.filter(municipality=town).order_by("username"):
            if not user.has_usable_password():
                user.set_password(password)
                user.save(update_fields=["password"])

    def _demo_form(self, town: Municipality, path: Path) -> None:
        """The 世帯訪問調査票 the workers' tablets pull on their first day, published through the same
        service as POST /sync/forms. A new version only when the fixture's form has changed."""
        spec = json.loads(path.read_text(encoding="utf-8"))
        latest = SurveyForm.objects.filter(municipality=town, key=spec["key"]).order_by("-version").first()
        if latest is not None and latest.title == spec["title"] and latest.definition == spec["definition"]:
            return
        publish_form(municipality=town, key=spec["key"], title=spec["title"], definition=spec["definition"])

    def _demo_outreach(self, town: Municipality) -> None:
        """A 支え愛連絡会 with concerns and 見守り, and a few outreach cases (one overdue), so the map's
        overdue list and the concern workflow have something to show."""
        if Meeting.objects.filter(municipality=town).exists():
            return
        hood = Neighborhood.objects.filter(municipality=town).order_by("code").first()
        if hood is None:
            return
        flagged = list(
            Household.objects.filter(neighborhood=hood, risk_flags__overlap=["8050", "hikikomori", "hoarding"])[:3]
        ) or list(Household.objects.filter(neighborhood=hood)[:3])
        coordinator = User.objects.get(username=DEMO_USERNAMES["coordinator"])
        today = timezone.localdate()
        outreach.record_meeting(
            user=coordinator, neighborhood=hood, held_on=today - dt.timedelta(days=20),
            attendees=[{"role": "neighborhood_officer", "name": "自治会長"}, {"role": "commissioner", "name": "民生委員"},
                       {"role": "welfare_division", "name": "福祉課"}, {"role": "shakyo", "name": "社協"}],
            notes="（デモ）気になる人の情報交換",
            concerns=[{"household_id": h.pk, "categories": ["isolation"], "description": "（デモ）最近姿を見ない"}
                      for h in flagged],
            watches=[{"household_id": h.pk, "watcher_name": "近所の方", "watcher_role": "ainowa", "cadence_days": 7,
                      "started_on": today - dt.timedelta(days=20)} for h in flagged[:2]],
        )
        worker = User.objects.get(username=DEMO_USERNAMES["outreach_worker"])
        for i, h in enumerate(flagged[:2]):
            case = outreach.open_case(by=coordinator, household_id=h.pk, title="（デモ）継続的支援", lead_worker=worker,
                                      opened_on=today - dt.timedelta(days=40 if i == 0 else 5))
            if i == 0:
                outreach.log_contact(case=case, by=worker, kind="visit", contacted_on=today - dt.timedelta(days=30),
                                     reached=False, note="（デモ）応答なし")
        outreach.sweep_overdue()

    def _demo_campaign(self, town: Municipality) -> None:
        """A running 世帯訪問調査 over all 自治会 from today, allocated to the corporations in blocks of
        the code order, started (so it reaches the workers) and with its schedule from today
        generated by the job cluster once it starts: a worker's first day is today."""
        hoods = list(Neighborhood.objects.filter(municipality=town).order_by("code"))
        partners = list(PartnerOrganization.objects.filter(municipality=town).order_by("code"))
        if not hoods or not partners or Campaign.objects.filter(municipality=town).exists():
            return
        coordinator = User.objects.get(username=DEMO_USERNAMES["coordinator"])
        start = timezone.localdate()
        fiscal_year = fiscal_year_of(start)  # the 年度 the campaign starts in
        campaign = visit_services.create_campaign(
            municipality=town, by=coordinator, fiscal_year=fiscal_year, name="世帯訪問調査 (デモ)",
            start_date=start, end_date=fiscal_year_bounds(fiscal_year)[1],
            visits_per_worker_day=12, max_attempts=3, time_bands=["am", "pm"],
        )
        visit_services.set_targets(campaign=campaign, neighborhood_ids=[h.pk for h in hoods])
        block = -(-len(hoods) // len(partners))
        visit_services.set_allocations(
            campaign=campaign, allocations=[(h.pk, partners[i // block].pk) for i, h in enumerate(hoods)]
        )
        visit_services.activate_campaign(campaign=campaign)
        visit_services.request_planning(campaign=campaign, kind="generate", by=coordinator, from_date=start)
