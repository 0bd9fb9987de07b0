"""The API's JSON renderer: orjson, with the output clients already rely on.

ninja's default renderer is the standard library's json with Django's encoder. orjson writes the
same JSON several times faster, with these choices to keep the bytes' meaning unchanged:
- datetimes, dates and times go through Django's encoder (`DjangoJSONEncoder`, via ninja's): ISO
  8601 with milliseconds and `Z` for UTC, as before, not orjson's microseconds and `+00:00`;
- Decimals, pydantic models, URLs and IP addresses go through the same encoder (as strings, dumped
  models); UUIDs and enums are written by orjson as the encoder wrote them (the canonical string,
  the member's value);
- keys that are not strings (an int-keyed dict) are written as strings, as json.dumps does;
- text is UTF-8, not `\\u` escapes (equal JSON; the API's error bodies were UTF-8 already).
"""

from typing import Any

import orjson
from django.http import HttpRequest
from ninja.renderers import BaseRenderer
from ninja.responses import NinjaJSONEncoder

_ENCODER = NinjaJSONEncoder()
OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS


def dumps(data: Any) -> bytes:
    return orjson.dumps(data, default=_ENCODER.default, option=OPTIONS)


class OrjsonRenderer(BaseRenderer):
    media_type = "application/json"

    def render(self, request: HttpRequest, data: Any, *, response_status: int) -> bytes:
        return dumps(data)
