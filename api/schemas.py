"""The base of every input schema: request bodies (BodySchema) and the operations of the sync push
(PayloadModel) follow one rule set, so a new schema cannot forget it.

- unknown fields are refused (extra="forbid");
- numbers and booleans arrive as JSON numbers and booleans: `true` is not 1 and "5" is not 5
  (pydantic would coerce both); query parameters, which are strings, use their own schemas;
- every string, nested dicts and lists included (answers, members, roles …), is checked by
  backend.text: a top-level string field is a single line unless it is declared `Note`; strings
  inside free-form dicts may hold line breaks (a multi-line answer).
"""

import datetime as dt
import decimal
import enum
import functools
import types
import typing
import uuid
from typing import Annotated, Any, ClassVar

from ninja import Schema
from ninja.schema import DjangoGetter
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

from backend.text import LINE_PATTERN, NOTE_PATTERN, check_note, text_problem

# Ids of rows (bigint keys), and the largest whole number a body may carry anywhere else.
MAX_ID = 2**63 - 1
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
# Optimistic versions are PositiveIntegerFields.
Version = Annotated[int, Field(ge=1, le=2**31 - 1, description="The version this edit is based on; a stale one is a 409.")]

_STRICT_TYPES = (int, float, bool)


def _drop_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def Unchanged(**kwargs: Any) -> Any:
    """A PATCH field: absent leaves the value unchanged; null is refused unless the type allows it.
    The published schema shows no default (an absent field is not the same as null)."""
    return Field(None, json_schema_extra=_drop_default, validate_default=False, **kwargs)


def _strip(annotation: Any) -> list[Any]:
    """The alternatives of a type, without Annotated wrappers and None."""
    if typing.get_origin(annotation) is Annotated:
        return _strip(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [alt for arg in typing.get_args(annotation) for alt in _strip(arg)]
    if annotation is type(None):
        return []
    return [annotation]


def _scalar_kind(annotation: Any) -> type | None:
    """int, float or bool when the field (or its list items) is one of those, else None."""
    for alt in _strip(annotation):
        if alt in _STRICT_TYPES:
            return alt
    return None


def _item_kind(annotation: Any) -> type | None:
    for alt in _strip(annotation):
        if typing.get_origin(alt) in (list, tuple, set, frozenset):
            args = typing.get_args(alt)
            if args:
                return _scalar_kind(args[0])
    return None


def _wrong_json_type(kind: type, value: Any) -> bool:
    if kind is bool:
        return not isinstance(value, bool)
    if kind is int:
        # JSON has one number type: 3.0 is the integer 3 (JSON Schema agrees), 3.5 is not.
        integral_float = isinstance(value, float) and value.is_integer()
        return isinstance(value, bool) or not (isinstance(value, int) or integral_float)
    return isinstance(value, bool) or not isinstance(value, int | float)


_TYPE_NAMES = {int: "an integer", float: "a number", bool: "true or false"}
_JSON_NAMES = {bool: "boolean", str: "string", int: "number", float: "number", list: "array", dict: "object"}


def _allows_newlines(field: FieldInfo) -> bool:
    def marked(items: Any) -> bool:
        return any(isinstance(m, AfterValidator) and m.func is check_note for m in items)

    if marked(field.metadata):
        return True
    for alt in [field.annotation, *typing.get_args(field.annotation)]:
        if typing.get_origin(alt) is Annotated and marked(typing.get_args(alt)[1:]):
            return True
    return False


def _text_errors(value: Any, *, multiline: bool, path: str = "") -> list[str]:
    if isinstance(value, str):
        problem = text_problem(value, multiline=multiline)
        return [f"{path}: {problem}" if path else problem] if problem else []
    errors: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if isinstance(key, str):
                problem = text_problem(key, multiline=False)
                if problem:
                    errors.append(f"{where} (the key): {problem}")
            errors += _text_errors(item, multiline=True, path=where)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            errors += _text_errors(item, multiline=multiline, path=f"{path}[{i}]" if path else f"[{i}]")
    return errors


def publish_text_rule(node: dict[str, Any], pattern: str) -> None:
    """Add the text rule's pattern to a property's schema wherever it is a free string (not an
    enum, a format such as uuid or date, or a pattern of its own)."""
    if node.get("type") == "string" and not {"enum", "const", "format", "pattern"} & set(node):
        node["pattern"] = pattern
    for alternative in node.get("anyOf", ()):
        publish_text_rule(alternative, pattern)
    if isinstance(node.get("items"), dict):
        publish_text_rule(node["items"], pattern)


def publish_text_rules(schema: dict[str, Any], cls: type[BaseModel]) -> None:
    """The published schema says what the validators refuse: each string property carries the
    pattern of its text rule (a single line unless declared `Note`)."""
    properties = schema.get("properties", {})
    for name, field in cls.model_fields.items():
        node = properties.get(field.alias or name)
        if isinstance(node, dict) and name not in getattr(cls, "checked_later", ()):
            publish_text_rule(node, NOTE_PATTERN if _allows_newlines(field) else LINE_PATTERN)


# Types whose validated values hold no free text: their fields skip the text rule (a UUID, a date, an
# enum member or a nested model, which checks its own fields).
_TEXTLESS = (int, float, bool, uuid.UUID, dt.date, dt.time, dt.timedelta, decimal.Decimal, enum.Enum, BaseModel)


def _holds_text(annotation: Any) -> bool:
    for alt in _strip(annotation):
        origin = typing.get_origin(alt)
        if origin is typing.Literal:
            continue
        if origin in (list, tuple, set, frozenset):
            if any(arg is not Ellipsis and _holds_text(arg) for arg in typing.get_args(alt)) or not typing.get_args(alt):
                return True
            continue
        if origin is None and isinstance(alt, type) and issubclass(alt, _TEXTLESS):
            continue
        return True
    return False


class FieldRule(typing.NamedTuple):
    """What the input rules check of one field: its JSON type (scalar kind, list item kind), and
    whether its text is checked and may hold line breaks."""

    kind: type | None
    item_kind: type | None
    text: bool
    multiline: bool


@functools.cache
def _field_rules(cls: type[BaseModel]) -> dict[str, FieldRule]:
    """Each field's rule, read from its annotation once per class, not at every validation (a sync
    push validates 500 operations of a dozen fields)."""
    later: frozenset[str] = getattr(cls, "checked_later", frozenset())
    return {
        name: FieldRule(_scalar_kind(field.annotation), _item_kind(field.annotation),
                        name not in later and _holds_text(field.annotation), _allows_newlines(field))
        for name, field in cls.model_fields.items()
    }


class PayloadModel(BaseModel):
    """The input rules, as a plain pydantic model: the base of the sync push's operation payloads
    (parsed per operation) and, through BodySchema, of every request body."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=publish_text_rules)
    # Fields validated later by a schema of their own (the sync push's per-operation `data`), so
    # that one bad operation is rejected alone instead of failing the whole batch.
    checked_later: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="before")
    @classmethod
    def _json_types(cls, value: Any, info: ValidationInfo) -> Any:
        rule = _field_rules(cls).get(info.field_name or "")
        if rule is None or value is None or (rule.kind is None and rule.item_kind is None):
            return value
        if rule.kind is not None and not isinstance(value, list | dict) and _wrong_json_type(rule.kind, value):
            given = _JSON_NAMES.get(type(value), type(value).__name__)
            raise ValueError(f"must be {_TYPE_NAMES[rule.kind]}, not a JSON {given}")
        if rule.item_kind is not None and isinstance(value, list):
            for i, item in enumerate(value):
                if _wrong_json_type(rule.item_kind, item):
                    raise ValueError(f"item {i} must be {_TYPE_NAMES[rule.item_kind]}")
        return value

    @field_validator("*", mode="after")
    @classmethod
    def _text(cls, value: Any, info: ValidationInfo) -> Any:
        rule = _field_rules(cls).get(info.field_name or "")
        if rule is None or not rule.text or value is None or isinstance(value, BaseModel):
            return value  # nested schemas check their own fields
        if isinstance(value, list | tuple) and value and all(isinstance(v, BaseModel) for v in value):
            return value
        errors = _text_errors(value, multiline=rule.multiline)
        if errors:
            raise ValueError("; ".join(errors[:5]))
        return value


class BodySchema(Schema, PayloadModel):
    """The base of every request body schema: ninja's Schema with the input rules."""

    @model_validator(mode="wrap")
    @classmethod
    def _run_root_validator(cls, values: Any, handler: ModelWrapValidatorHandler, info: ValidationInfo) -> Any:
        """A body is parsed JSON (a dict): validate it once. ninja's Schema validates a model that
        forbids extra fields twice, as given and then through its ORM getter (for `resolve_`
        methods, which no body has), so every body was checked twice and a sync push of 100
        operations made 400 validations. Anything else takes ninja's way."""
        if isinstance(values, dict) and not cls._ninja_resolvers:
            return handler(values)
        handler(values)
        return handler(DjangoGetter(values, cls, info.context))
