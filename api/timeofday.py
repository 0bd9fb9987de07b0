"""A time of day on the municipality's clock (Asia/Tokyo), as "HH:MM" or "HH:MM:SS".

pydantic's own `time` is published as `format: time`, which JSON Schema reads as RFC 3339
full-time and so requires a zone offset ("09:00:00+09:00"); the API means local wall-clock times
and would accept "09:00" or an offset it then ignores. This type publishes the pattern it accepts
and refuses everything else, so the schema and the server agree."""

import datetime as dt
import re
from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema

TIME_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$"
_TIME = re.compile(TIME_PATTERN)


def _local_time(value: Any) -> Any:
    if isinstance(value, dt.time) and value.tzinfo is None:
        return value
    if isinstance(value, str):
        # search, as JSON Schema's pattern does: "$" may stand before a final newline
        match = _TIME.search(value)
        if match:
            return match.group(0)
    raise ValueError('must be a local time as "HH:MM" or "HH:MM:SS" (no zone offset)')


LocalTime = Annotated[
    dt.time,
    BeforeValidator(_local_time),
    WithJsonSchema({"type": "string", "pattern": TIME_PATTERN, "examples": ["09:00:00"]}),
]
