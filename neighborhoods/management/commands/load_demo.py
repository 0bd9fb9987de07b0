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
        self._load_partners(hokuei, FIXTURES / "hokuei" / "partners.json", password)
        self._load_accounts(hokuei, password)
        self.stdout.write(self.style.SUCCESS("demo data loaded"))

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
        names = {
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
