"""A client generated from the live OpenAPI document by openapi-python-client works against a real
server: a tablet's day (log in, register, pull, push a visit, raise a concern, log a case contact)
and a coordinator's support plan, with nothing but generated code on the wire.

The photo upload is generated (not dropped) but not called: openapi-python-client 0.29 writes a
multi-content-type body as `File | … | Unset` without importing Unset, so that one module does not
import."""

import datetime as dt
import importlib
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.test import Client as DjangoClient
from django.utils import timezone

from tests import factories
from tests.conftest import build_town

GENERATOR = Path(sys.executable).with_name("openapi-python-client")
PACKAGE = "tsunagu_generated_client"
# openapi-python-client sends only JSON, forms, multipart and application/octet-stream bodies; the
# photo upload's image types are raw bytes too.
CONFIG = "content_type_overrides:\n" + "".join(
    f"  {media}: application/octet-stream\n" for media in ("image/jpeg", "image/png", "image/webp", "image/heic")
)


@pytest.fixture
def generated(tmp_path):
    """The generated package, imported from tmp_path (and forgotten afterwards)."""
    document = DjangoClient().get("/api/v1/openapi.json")
    assert document.status_code == 200
    (tmp_path / "openapi.json").write_bytes(document.content)
    (tmp_path / "config.yaml").write_text(CONFIG)
    result = subprocess.run(
        [str(GENERATOR), "generate", "--path", "openapi.json", "--output-path", PACKAGE, "--meta", "none",
         "--config", "config.yaml"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Endpoint will not be generated" not in result.stdout + result.stderr, result.stdout
    assert (tmp_path / PACKAGE / "api" / "sync" / "visits_photo_api_upload_photo.py").exists()
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def _module(package, name: str):
    return importlib.import_module(f"{package.__name__}.{name}")


@pytest.mark.slow
# committed for the live server. Not serialized_rollback: after a transactional test without it has
# flushed the database (post_migrate makes the content types again, under new ids), restoring the
# serialized rows collides with them, so the outcome would depend on which tests ran before.
@pytest.mark.django_db(transaction=True)
def test_a_generated_client_does_a_tablet_day_and_a_support_plan(generated, live_server):
    town = build_town("940004").with_outreach()
    worker, coordinator = town.users["outreach_worker"], town.users["coordinator"]
    client_mod = _module(generated, "client")
    models = _module(generated, "models")
    api = lambda name: _module(generated, f"api.{name}")  # noqa: E731

    def log_in(username: str):
        anonymous = client_mod.Client(base_url=live_server.url)
        answer = api("auth.accounts_api_create_token").sync_detailed(
            client=anonymous,
            body=models.TokenIn(username=username, password=factories.PASSWORD, device_name="generated client"),
        )
        assert answer.status_code == 201, answer.content
        assert isinstance(answer.parsed, models.TokenOut)
        return client_mod.AuthenticatedClient(base_url=live_server.url, token=answer.parsed.token)

    tablet = log_in(worker.username)
    device_id = uuid.uuid4()
    registered = api("sync.visits_sync_api_register_device").sync_detailed(
        client=tablet, body=models.DeviceIn(device_id=device_id, name="tablet 1", platform="android")
    )
    assert registered.status_code == 201, registered.content
    assert registered.parsed.device_id == device_id

    pulled = api("sync.visits_sync_api_pull").sync_detailed(client=tablet, device_id=device_id)
    assert pulled.status_code == 200, pulled.content
    # a change is documented only as an object (visits/sync/api.py PullOut.changes: list[dict])
    pulled_ids = {(c["kind"], str(c["id"])) for c in pulled.parsed.changes}
    assert ("scheduled_visit", str(town.visit.id)) in pulled_ids

    visit_id = uuid.uuid4()
    visit = models.OpInData.from_dict({
        "id": str(visit_id), "household_id": str(town.household.id), "scheduled_visit_id": str(town.visit.id),
        "outcome": "met", "visited_at": timezone.now().isoformat(), "notes": "お元気そう",
    })
    pushed = api("sync.visits_sync_api_push").sync_detailed(
        client=tablet,
        body=models.PushIn(device_id=device_id, ops=[models.OpIn(op_id=uuid.uuid4(), kind="visit.create", data=visit)]),
    )
    assert pushed.status_code == 200, pushed.content
    assert [r["status"] for r in pushed.parsed.results] == ["applied"], pushed.content

    raised = api("outreach.outreach_api_raise_concern").sync_detailed(
        client=tablet,
        body=models.ConcernIn(
            household_id=town.household.id, categories=[models.ConcernCategory("living_alone")],
            source=models.ConcernSource.VISIT, description="郵便物がたまっている",
        ),
    )
    assert raised.status_code == 201, raised.content
    assert raised.parsed.categories == ["living_alone"]

    contact = api("outreach.outreach_api_log_contact").sync_detailed(
        case_id=town.case.id, client=tablet,
        body=models.ContactIn(kind=models.CaseContactKind.VISIT, contacted_on=timezone.localdate(), reached=True),
    )
    assert contact.status_code == 201, contact.content
    assert contact.parsed.kind == "visit"

    office = log_in(coordinator.username)
    roles = [models.SupportPlanInRolesItem.from_dict({"agency": "地域包括支援センター", "role": "見守り"})]
    plan = api("outreach.outreach_api_add_plan").sync_detailed(
        case_id=town.case.id, client=office, body=models.SupportPlanIn(goals="月に一度の訪問を続ける", roles=roles)
    )
    assert plan.status_code == 201, plan.content
    assert plan.parsed.goals == "月に一度の訪問を続ける"

    refused = api("outreach.outreach_api_add_plan").sync_detailed(
        case_id=town.case.id, client=tablet, body=models.SupportPlanIn(goals="x", roles=roles)
    )
    assert refused.status_code == 403
    assert isinstance(refused.parsed, models.Error)
    assert refused.parsed.error.code == "forbidden"
    assert town.case.contacts.filter(contacted_on__gte=timezone.localdate() - dt.timedelta(days=1)).count() == 1
