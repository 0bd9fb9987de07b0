"""Survey form definitions and answer validation. A definition is
{"questions": [{"id", "type", "label", "choices"?, "required"?}]}; answers are {question_id: value}."""

import datetime as dt
from typing import Any

from django.db import transaction
from django.db.models import Max

from backend.errors import InvalidInput
from visits.models import SurveyForm

QUESTION_TYPES = {"text", "number", "integer", "boolean", "choice", "multi_choice", "date"}
MAX_TEXT = 2000


def definition_errors(definition: Any) -> list[dict]:
    errors: list[dict] = []
    questions = definition.get("questions") if isinstance(definition, dict) else None
    if not isinstance(questions, list) or not questions:
        return [{"loc": ["definition", "questions"], "msg": "a non-empty list of questions is required"}]
    seen = set()
    for i, q in enumerate(questions):
        loc = ["definition", "questions", i]
        if not isinstance(q, dict):
            errors.append({"loc": loc, "msg": "a question must be an object"})
            continue
        qid, qtype = q.get("id"), q.get("type")
        if not isinstance(qid, str) or not qid:
            errors.append({"loc": [*loc, "id"], "msg": "id must be a non-empty string"})
        elif qid in seen:
            errors.append({"loc": [*loc, "id"], "msg": f"duplicate id {qid!r}"})
        seen.add(qid)
        if qtype not in QUESTION_TYPES:
            errors.append({"loc": [*loc, "type"], "msg": f"type must be one of {sorted(QUESTION_TYPES)}"})
        if qtype in ("choice", "multi_choice"):
            choices = q.get("choices")
            if not isinstance(choices, list) or not choices or not all(isinstance(c, str) for c in choices):
                errors.append({"loc": [*loc, "choices"], "msg": "choices must be a non-empty list of strings"})
        if not isinstance(q.get("label", ""), str):
            errors.append({"loc": [*loc, "label"], "msg": "label must be a string"})
    return errors


def answer_errors(definition: dict, answers: Any, *, complete: bool) -> list[dict]:
    """Problems with `answers` against a definition. `complete`: required questions must be
    answered (a visit where someone was met); otherwise answers are optional but still typed."""
    if not isinstance(answers, dict):
        return [{"loc": ["answers"], "msg": "answers must be an object"}]
    questions = {q["id"]: q for q in definition.get("questions", [])}
    errors = [{"loc": ["answers", key], "msg": "no such question in this form version"} for key in answers if key not in questions]
    for qid, q in questions.items():
        loc = ["answers", qid]
        if qid not in answers or answers[qid] in (None, "", []):
            if complete and q.get("required"):
                errors.append({"loc": loc, "msg": "required"})
            continue
        msg = _type_error(q, answers[qid])
        if msg:
            errors.append({"loc": loc, "msg": msg})
    return errors


def _type_error(q: dict, value: Any) -> str | None:
    qtype = q["type"]
    if qtype == "text":
        return None if isinstance(value, str) and len(value) <= MAX_TEXT else f"a text of at most {MAX_TEXT} characters"
    if qtype == "number":
        return None if isinstance(value, int | float) and not isinstance(value, bool) else "a number"
    if qtype == "integer":
        return None if isinstance(value, int) and not isinstance(value, bool) else "an integer"
    if qtype == "boolean":
        return None if isinstance(value, bool) else "true or false"
    if qtype == "choice":
        return None if value in q.get("choices", []) else f"one of {q.get('choices')}"
    if qtype == "multi_choice":
        ok = isinstance(value, list) and all(v in q.get("choices", []) for v in value) and len(set(value)) == len(value)
        return None if ok else f"a list of distinct values from {q.get('choices')}"
    if qtype == "date":
        try:
            dt.date.fromisoformat(value)
        except (TypeError, ValueError):
            return "a date (YYYY-MM-DD)"
    return None


@transaction.atomic
def publish_form(*, municipality, key: str, title: str, definition: dict) -> SurveyForm:
    """A new version of a form; earlier versions stay valid for answers made with them."""
    errors = definition_errors(definition)
    if errors:
        raise InvalidInput("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors), details=errors)
    # Lock the key's versions so two publications cannot take the same number.
    list(SurveyForm.objects.select_for_update().filter(municipality=municipality, key=key).values_list("pk", flat=True))
    latest = SurveyForm.objects.filter(municipality=municipality, key=key).aggregate(v=Max("version"))["v"] or 0
    return SurveyForm.objects.create(municipality=municipality, key=key, version=latest + 1, title=title, definition=definition)
