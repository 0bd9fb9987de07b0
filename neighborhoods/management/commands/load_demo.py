"""Load the demo town (北栄町 model) and Okinawa City's 自治会 through the same commands a
municipality would use. Safe to run again: what exists is kept or updated in place."""

import json
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.demo import DEMO_USERNAMES
from accounts.models import User
from accounts.roles import Role
from accounts.services import create_user
from backend.tenancy import scope
from neighborhoods.models import Municipality, Neighborhood
from visits.models import PartnerOrganization

FIXTURES = Path(settings.BASE_DIR) / "fixtures"

DEMO_MUNICIPALITIES = [
    {"code": "313726", "name": "北栄町", "name_kana": "ホクエイチョウ", "prefecture": "鳥取県", "folder": "hokuei"},
    {"code": "472115", "name": "沖縄市", "name_kana": "オキナワシ", "prefecture": "沖縄県", "folder": "okinawa"},
]


class Command(BaseCommand):
    help = "Load the demo data (fixtures/): municipalities, 自治会, households, partners and demo accounts."

    def add_arguments(self, parser):
        parser.add_argument("--password", default=None, help="demo password (default: TSUNAGU_DEMO_PASSWORD)")

    def handle(self, *args, password: str | None, **options):
        if settings.PRODUCTION:
            raise CommandError("load_demo refuses to run with TSUNAGU_ENV=production: demo accounts never exist there.")
        password = password or settings.TSUNAGU_DEMO_PASSWORD
        towns = {}
        for spec in DEMO_MUNICIPALITIES:
            town, _created = Municipality.objects.get_or_create(
                code=spec["code"],
                defaults={k: spec[k] for k in ("name", "name_kana", "prefecture")},
            )
            towns[spec["folder"]] = town
            self._load_places(town, FIXTURES / spec["folder"])
        hokuei = towns["hokuei"]
        with scope(hokuei.id):  # row-level security: written as the application, for this town
            self._load_partners(hokuei, FIXTURES / "hokuei" / "partners.json", password)
            self._load_accounts(hokuei, password)
            self._demo_form(hokuei, FIXTURES / "hokuei" / "survey_form.json")
            self._demo_campaign(hokuei)
            self._demo_outreach(hokuei)
        self.stdout.write(self.style.SUCCESS("demo data loaded"))

    def _demo_form(self, town: Municipality, path: Path) -> None:
        """The 世帯訪問調査票 the workers' tablets pull on their first day, published through the same
        service as POST /sync/forms. A new version only when the fixture's form has changed."""
        from visits.forms import publish_form
        from visits.models import SurveyForm

        spec = json.loads(path.read_text(encoding="utf-8"))
        latest = SurveyForm.objects.filter(municipality=town, key=spec["key"]).order_by("-version").first()
        if latest is not None and latest.title == spec["title"] and latest.definition == spec["definition"]:
            return
        publish_form(municipality=town, key=spec["key"], title=spec["title"], definition=spec["definition"])

    def _demo_outreach(self, town: Municipality) -> None:
        """A 支え愛連絡会 with concerns and 見守り, and a few outreach cases (one overdue), so the map's
        overdue list and the concern workflow have something to show."""
        import datetime as dt

        from django.utils import timezone

        from outreach import services as outreach
        from outreach.models import Meeting

        if Meeting.objects.filter(municipality=town).exists():
            return
        hood = Neighborhood.objects.filter(municipality=town).order_by("code").first()
        if hood is None:
            return
        from neighborhoods.models import Household

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
        from django.utils import timezone

        from backend.dates import fiscal_year_bounds, fiscal_year_of
        from visits import services as visit_services
        from visits.models import Campaign

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

    def _load_places(self, town: Municipality, folder: Path) -> None:
        boundaries = folder / "neighborhoods.geojson"
        if boundaries.exists() and "import_boundaries" in _commands():
            call_command(
                "import_boundaries", str(boundaries), municipality=town.code,
                name_field="name", code_field="code", kana_field="kana",
                district_field="district", area_field="area", verbosity=0,
            )
        households = folder / "households.csv"
        if households.exists() and "import_households" in _commands():
            call_command(
                "import_households", str(households), municipality=town.code,
                residents=str(folder / "residents.csv"), verbosity=0, progress=False,
            )
        resources = folder / "resources.csv"
        if resources.exists() and "import_resources" in _commands():
            call_command("import_resources", str(resources), municipality=town.code, verbosity=0)

    @transaction.atomic
    def _load_partners(self, town: Municipality, path: Path, password: str) -> None:
        if not path.exists():
            return
        for spec in json.loads(path.read_text(encoding="utf-8")):
            partner, _ = PartnerOrganization.objects.update_or_create(
                municipality=town, code=spec["code"], defaults={"name": spec["name"]}
            )
            if hasattr(partner, "apply_demo_details"):
                partner.apply_demo_details(spec)
            for worker in spec.get("workers", []):
                if not User.objects.filter(username=worker["username"]).exists():
                    create_user(
                        municipality=town, username=worker["username"], role=Role.OUTREACH_WORKER,
                        password=password, display_name=worker.get("display_name", ""), partner_organization=partner,
                    )

    @transaction.atomic
    def _load_accounts(self, town: Municipality, password: str) -> None:
        partner = PartnerOrganization.objects.filter(municipality=town).order_by("code").first()
        if partner is None:
            partner = PartnerOrganization.objects.create(municipality=town, code="demo-partner", name="デモ法人")
        neighborhoods = list(Neighborhood.objects.filter(municipality=town).order_by("code")[:3])
        names: dict[str, str] = {
            Role.COORDINATOR: "デモ コーディネーター",
            Role.SUPERVISOR: "デモ 監督者",
            Role.OUTREACH_WORKER: "デモ 訪問員",
            Role.COMMISSIONER: "デモ 民生委員",
            Role.ADMIN: "デモ 管理者",
        }
        for role, username in DEMO_USERNAMES.items():
            if User.objects.filter(username=username).exists():
                continue
            create_user(
                municipality=town, username=username, role=role, password=password, display_name=names[role],
                partner_organization=partner if role == Role.OUTREACH_WORKER else None,
                neighborhoods=neighborhoods if role == Role.COMMISSIONER else (),
            )


def _commands() -> set[str]:
    from django.core.management import get_commands

    return set(get_commands())
