"""How the API reads JSON bodies. A body is JSON only when it says so: text/plain or a missing
Content-Type is refused (415) instead of being parsed anyway, which would let a cross-site form
post (text/plain needs no CORS preflight) reach a JSON endpoint. NaN and Infinity, which JSON does
not have, are refused too. Endpoints that take other bodies (PUT /sync/photos/{id}: image bytes)
read the request themselves and never come here."""

import json
from typing import Any

from django.http import HttpRequest
from ninja.parser import Parser

from backend.errors import TsunaguError


class UnsupportedMediaType(TsunaguError):
    status = 415
    code = "unsupported_media_type"
    default_message = "Send the body as JSON with 'Content-Type: application/json'."


def is_json_media_type(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class JsonOnlyParser(Parser):
    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        if not is_json_media_type(request.META.get("CONTENT_TYPE")):
            given = request.META.get("CONTENT_TYPE") or "none"
            raise UnsupportedMediaType(
                f"This endpoint takes JSON: send 'Content-Type: application/json' (got {given[:100]}).",
                details={"content_type": given[:100]},
            )
        return json.loads(request.body, parse_constant=_no_constant)
