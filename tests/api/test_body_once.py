"""A request body is validated once (api.schemas.BodySchema): ninja's Schema validated a model
that forbids extra fields twice, so every rule ran twice per body and a sync push of 100
operations made 400 validations."""

from typing import Any, ClassVar

from pydantic import field_validator

from api.schemas import BodySchema
from visits.sync.api import PushIn


class Counted(BodySchema):
    calls: ClassVar[list[str]] = []
    name: str
    size: int

    @field_validator("name")
    @classmethod
    def _count(cls, value: Any) -> Any:
        cls.calls.append(value)
        return value


def test_a_body_is_validated_once():
    Counted.calls.clear()
    parsed = Counted.model_validate({"name": "北栄", "size": 3})
    assert (parsed.name, parsed.size) == ("北栄", 3)
    assert Counted.calls == ["北栄"]


def test_the_rules_still_hold_when_validated_once():
    for bad in ({"name": "北栄", "size": 3, "extra": 1}, {"name": "北\x00栄", "size": 3}, {"name": "北栄", "size": True}):
        try:
            Counted.model_validate(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} was accepted")


def test_the_sync_push_envelope_parses_as_before():
    body = {"device_id": "6f1c1c1e-8c3c-4e4e-9a1b-2f6c3f1d9a10", "ops": [
        {"op_id": "0b7f8a52-4f0a-4f7e-8a66-0d5f0b7b9c11", "kind": "visit.create", "data": {"x": 1}}]}
    parsed = PushIn.model_validate(body)
    assert str(parsed.ops[0].op_id) == body["ops"][0]["op_id"] and parsed.ops[0].data == {"x": 1}
