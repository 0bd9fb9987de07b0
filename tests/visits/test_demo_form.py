"""The demo is a real first day: load_demo publishes the 世帯訪問調査票 (fixtures/hokuei/survey_form.json),
the demo worker's first pull gets it, and visits are checked against it."""

import json
import uuid

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from accounts.models import User
from backend.vocabulary import CONCERN_CATEGORIES
from neighborhoods.access import visible_households
from tests import factories
from tests.conftest import ApiClient
from visits import forms
from visits.models import SurveyForm, VisitRecord

FORM_FILE = settings.BASE_DIR / "fixtures" / "hokuei" / "survey_form.json"


def test_the_fixture_is_a_valid_form_with_the_concern_categories():
    spec = json.loads(FORM_FILE.read_text(encoding="utf-8"))
    assert spec["key"] == "household-visit" and spec["title"] == "世帯訪問調査票"
    assert forms.definition_errors(spec["definition"]) == []
    questions = {q["id"]: q for q in spec["definition"]["questions"]}
    assert questions["worries"]["choices"] == list(CONCERN_CATEGORIES)
    assert questions["consent_to_contact"]["choices"] == ["はい", "いいえ"]
    assert questions["consent_to_contact"]["required"] is True
    assert {"household_size", "age_bands", "elderly_living_alone", "not_going_out", "notes"} <= set(questions)


@pytest.fixture
def demo(db):
    call_command("load_demo", password="tsunagu-demo-test", verbosity=0)
    return User.objects.get(username="demo-worker")


def _answers(**more):
    return {"household_size": 2, "age_bands": ["65-74", "75+"], "elderly_living_alone": False,
            "not_going_out": True, "worries": ["hikikomori", "8050"], "notes": "息子さんが在宅", **more}


def test_the_demo_workers_first_pull_has_the_form_and_visits_are_checked_against_it(demo):
    form = SurveyForm.objects.get(municipality=demo.municipality, key="household-visit")
    assert form.title == "世帯訪問調査票" and form.published

    call_command("load_demo", password="tsunagu-demo-test", verbosity=0)  # again: no new version
    assert SurveyForm.objects.filter(municipality=demo.municipality, key="household-visit").count() == 1

    client = ApiClient(factories.token_for(demo, "demo tablet"))
    device_id = str(uuid.uuid4())
    assert client.post("sync/devices", {"device_id": device_id, "name": "demo tablet"}).status_code == 201
    page = client.get("sync/pull", query={"device_id": device_id, "cursor": ""}).json()
    pulled = [c for c in page["changes"] if c["kind"] == "form"]
    assert [(c["data"]["key"], c["data"]["version"], c["data"]["title"]) for c in pulled] == [
        ("household-visit", form.version, "世帯訪問調査票")]
    assert pulled[0]["data"]["definition"] == form.definition

    household = visible_households(demo).order_by("external_id").first()
    assert household is not None, "the demo worker's corporation has 自治会 allocated"

    def visit(answers):
        return {"op_id": str(uuid.uuid4()), "kind": "visit.create", "data": {
            "id": str(uuid.uuid4()), "household_id": str(household.pk), "outcome": "met",
            "visited_at": timezone.now().isoformat(), "form_key": "household-visit",
            "form_version": form.version, "answers": answers}}

    good, missing_consent = visit(_answers(consent_to_contact="はい")), visit(_answers())
    results = client.post("sync/push", {"device_id": device_id, "ops": [good, missing_consent]}).json()["results"]
    assert results[0]["status"] == "applied", results[0]
    assert VisitRecord.objects.get(pk=good["data"]["id"]).answers["consent_to_contact"] == "はい"
    assert results[1]["status"] == "rejected" and results[1]["error"]["code"] == "invalid_answers"
    assert {"loc": ["answers", "consent_to_contact"], "msg": "required"} in results[1]["error"]["details"]
    assert not VisitRecord.objects.filter(pk=missing_consent["data"]["id"]).exists()
