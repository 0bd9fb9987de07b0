"""The demo towns and their accounts. Only `load_demo` creates them, and never in production."""

from pathlib import Path

from django.conf import settings

FIXTURES = Path(settings.BASE_DIR) / "fixtures"

# Onboarded as a real municipality would be (create_municipality, then the import commands).
DEMO_MUNICIPALITIES = [
    {"code": "313726", "name": "北栄町", "name_kana": "ホクエイチョウ", "prefecture": "鳥取県", "folder": "hokuei"},
    {"code": "472115", "name": "沖縄市", "name_kana": "オキナワシ", "prefecture": "沖縄県", "folder": "okinawa"},
]

# One account per role in the first town (fixtures/hokuei/users.csv lists them with the workers).
DEMO_USERNAMES = {
    "coordinator": "demo-coordinator",
    "supervisor": "demo-supervisor",
    "outreach_worker": "demo-worker",
    "commissioner": "demo-commissioner",
    "admin": "demo-admin",
}
