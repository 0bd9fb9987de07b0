"""Inside one municipality: a 民生委員 sees the status, not the content, of others' concerns; the
read-only supervisor raises nothing; ids named in a concern's body must be ones the caller may see."""

import uuid

import pytest
from django.utils import timezone

from outreach import sync as outreach_sync
from outreach.models import Concern
from tests import factories
from visits.models import Device, VisitRecord
from visits.sync import engine as sync

STATUS_KEYS = {"view", "id", "status", "neighborhood_id", "created_at", "updated_at"}


def coordinators_concern(town):
    """A concern raised by the coordinator, with content a 民生委員 must not read."""
    client = town.client("coordinator")
    r = client.post("concerns", {
        "household_id": str(town.household.id), "resident_id": str(town.resident.id), "source": "counter",
        "categories": ["abuse_dv"], "place_description": "裏の勝手口", "description": "怒鳴り声が続く",
    })
    assert r.status_code == 201, r.content
    concern_id = r.json()["id"]
    r = client.post(f"concerns/{concern_id}/transitions", {"to": "triaged", "reason": "児相に照会済み"})
    assert r.status_code == 200, r.content
    return concern_id


def test_a_commissioner_sees_only_the_status_of_anothers_concern(town):
    concern_id = coordinators_concern(town)
    detail = town.client("commissioner").get(f"concerns/{concern_id}")
    assert detail.status_code == 200, detail.content
    body = detail.json()
    assert set(body) == STATUS_KEYS
    assert (body["view"], body["status"], body["neighborhood_id"]) == ("status", "triaged", town.neighborhood.id)
    text = detail.content.decode()
    for secret in ("abuse_dv", "裏の勝手口", "怒鳴り声", "児相", str(town.resident.id), str(town.household.id)):
        assert secret not in text

    listed = town.client("commissioner").get("concerns").json()["items"]
    assert [set(item) for item in listed] == [STATUS_KEYS]
    assert "abuse_dv" not in str(listed)


def test_a_commissioner_follows_their_own_flag_and_the_coordinator_sees_all(town):
    """Their own flag: what they wrote and where it went, not the coordinators' reasons or the case."""
    from outreach import services

    mine = town.client("commissioner").post(
        "concerns", {"household_id": str(town.household.id), "categories": ["isolation"], "description": "会話がない"}
    )
    assert mine.status_code == 201, mine.content
    services.transition_concern(
        concern=Concern.objects.get(pk=mine.json()["id"]), to="triaged", reason="長男の暴力の疑い",
        by=town.users["coordinator"],
    )
    own = town.client("commissioner").get(f"concerns/{mine.json()['id']}").json()
    assert (own["view"], own["description"], own["categories"]) == ("reporter", "会話がない", ["isolation"])
    assert [(t["from_status"], t["to_status"]) for t in own["transitions"]][-1] == ("new", "triaged")
    assert all(set(t) == {"from_status", "to_status", "at"} for t in own["transitions"])
    assert "長男の暴力の疑い" not in str(own) and "case_id" not in own

    concern_id = coordinators_concern(town)
    full = town.client("coordinator").get(f"concerns/{concern_id}").json()
    assert full["view"] == "full" and full["categories"] == ["abuse_dv"]
    assert [t["reason"] for t in full["transitions"]] == ["raised", "児相に照会済み"]
    views = {item["id"]: item["view"] for item in town.client("commissioner").get("concerns").json()["items"]}
    assert views == {mine.json()["id"]: "reporter", concern_id: "status"}


def test_the_published_schema_says_which_fields_each_view_has(town):
    from api.api import api

    schema = api.get_openapi_schema()
    components = schema["components"]["schemas"]

    def one_of(node) -> set[str]:
        assert node["discriminator"]["propertyName"] == "view"
        return {ref["$ref"].rsplit("/", 1)[-1] for ref in node["oneOf"]}

    detail = schema["paths"]["/api/v1/concerns/{concern_id}"]["get"]["responses"][200]["content"]["application/json"]
    assert one_of(detail["schema"]) == {"ConcernDetailFullOut", "ConcernDetailReporterOut", "ConcernStatusOut"}
    page = schema["paths"]["/api/v1/concerns"]["get"]["responses"][200]["content"]["application/json"]["schema"]
    page = components[page["$ref"].rsplit("/", 1)[-1]]
    item = components[page["properties"]["items"]["items"]["$ref"].rsplit("/", 1)[-1]]
    assert one_of(item) == {"ConcernFullOut", "ConcernReporterOut", "ConcernStatusOut"}
    assert set(components["ConcernStatusOut"]["properties"]) == STATUS_KEYS


# --- the read-only supervisor ---------------------------------------------------------------------


def test_a_supervisor_may_not_raise_a_concern(town):
    r = town.client("supervisor").post("concerns", {"household_id": str(town.household.id), "categories": ["isolation"]})
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert not Concern.objects.filter(municipality=town.municipality).exists()


def test_a_supervisors_offline_concern_is_refused_by_the_kind_itself(town):
    """Even a device registered before supervisors were read-only: the push is refused as a whole,
    and the concern.create kind refuses on its own too."""
    supervisor = town.users["supervisor"]
    device = Device.objects.create(id=uuid.uuid4(), municipality=town.municipality, user=supervisor)
    op = {"op_id": str(uuid.uuid4()), "kind": "concern.create", "data": {
        "id": str(uuid.uuid4()), "household_id": str(town.household.id), "categories": ["isolation"]}}
    r = town.client("supervisor").post("sync/push", {"device_id": str(device.pk), "ops": [op]})
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    with pytest.raises(sync.Rejected) as caught:
        outreach_sync.apply_concern_create(user=supervisor, device=device, op=op, context=None)
    assert caught.value.code == "forbidden"
    assert not Concern.objects.exists()


# --- ids in a concern's body ----------------------------------------------------------------------


def _visit(town, household, worker=None):
    return VisitRecord.objects.create(
        id=uuid.uuid4(), municipality=household.municipality, household=household,
        worker=worker or town.users["outreach_worker"], outcome="met", visited_at=timezone.now(),
    )


def _push_concern(client, device_id, **data):
    op = {"op_id": str(uuid.uuid4()), "kind": "concern.create",
          "data": {"id": str(uuid.uuid4()), "categories": ["isolation"], **data}}
    r = client.post("sync/push", {"device_id": device_id, "ops": [op]})
    assert r.status_code == 200, r.content
    return r.json()["results"][0]


@pytest.fixture
def commissioner_device(town):
    device_id = str(uuid.uuid4())
    assert town.client("commissioner").post("sync/devices", {"device_id": device_id}).status_code == 201
    return device_id


def test_a_pushed_concern_links_only_a_visible_visit_of_its_own_household(town, other_town, commissioner_device):
    client = town.client("commissioner")
    muni = town.municipality
    neighbour = factories.household(muni, at=factories.centre(town.neighborhood))  # same 自治会
    elsewhere = factories.household(muni, at=factories.centre(factories.neighborhood(muni)))  # not theirs
    here = str(town.household.id)
    refused = {
        "another household's visit": (here, _visit(town, neighbour).id),
        "a visit outside the commissioner's 自治会": (here, _visit(town, elsewhere).id),
        "a visit of their own 自治会 (visit records are the survey's)": (here, _visit(town, town.household).id),
        "a visit of another municipality": (here, _visit(other_town, other_town.household).id),
        "no such visit": (here, uuid.uuid4()),
        "a visit without the household": (None, _visit(town, town.household).id),
    }
    messages = set()
    for name, (household_id, visit_id) in refused.items():
        data = {"visit_record_id": str(visit_id), "pin": {"lon": 130.0, "lat": 35.0}}
        if household_id:
            data["household_id"] = household_id
        result = _push_concern(client, commissioner_device, **data)
        assert result["status"] == "rejected", name
        assert result["error"]["code"] == "visit_unknown", (name, result)
        messages.add(result["error"]["message"])
    assert len(messages) == 1  # nothing tells an existing visit from a missing one
    assert not Concern.objects.exists()

    worker = town.client("outreach_worker")  # the worker at the door links the visit they made
    worker_device = str(uuid.uuid4())
    assert worker.post("sync/devices", {"device_id": worker_device}).status_code == 201
    own = _visit(town, town.household)
    result = _push_concern(worker, worker_device, household_id=here, visit_record_id=str(own.id))
    assert result["status"] == "applied", result
    assert Concern.objects.get(pk=result["id"]).visit_record_id == own.id


def test_a_pushed_concern_names_a_person_of_its_own_household(town, commissioner_device):
    muni = town.municipality
    neighbour = factories.household(muni, at=factories.centre(town.neighborhood))
    stranger = factories.resident(neighbour, birth_year=1950)
    result = _push_concern(
        town.client("commissioner"), commissioner_device, household_id=str(town.household.id), resident_id=str(stranger.id)
    )
    assert (result["status"], result["error"]["code"]) == ("rejected", "resident_unknown")
    assert not Concern.objects.exists()


def test_the_api_refuses_ids_the_caller_may_not_see(town, other_town):
    client = town.client("commissioner")
    muni = town.municipality
    hidden = factories.household(muni, at=factories.centre(factories.neighborhood(muni)))
    for body, code in (
        ({"household_id": str(hidden.id)}, "household_unknown"),
        ({"household_id": str(other_town.household.id)}, "household_unknown"),
        ({"household_id": str(town.household.id), "resident_id": str(other_town.resident.id)}, "resident_unknown"),
    ):
        r = client.post("concerns", {**body, "categories": ["isolation"]})
        assert (r.status_code, r.json()["error"]["code"]) == (404, code), (body, r.content)
    assert not Concern.objects.exists()
