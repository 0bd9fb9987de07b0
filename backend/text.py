"""What text the domain can hold. Names, notes and answers are shown to other people on screens,
printed in reports and exported to CSV, so characters that are invisible or reorder what is shown
(control characters, bidirectional overrides and isolates) are refused, and so are lone UTF-16
surrogates (PostgreSQL cannot store them). A single line (a name, a title, a code) also refuses
line breaks and tabs; a note keeps ordinary line breaks and tabs.

`Line` and `Note` are the annotated pydantic types; api.schemas.BodySchema applies the same rule to
every string of every request body, nested dicts and lists included."""

import re
from typing import Annotated

from pydantic import AfterValidator

# C0 except \t \n \r, DEL, C1, the bidi marks/embeddings/overrides/isolates, lone surrogates.
_NEVER = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
# Also refused on a single line: tab, line feed, carriage return, line and paragraph separators.
_NOT_ON_A_LINE = re.compile("[\t\n\r\u2028\u2029]")


def text_problem(value: str, *, multiline: bool) -> str | None:
    """Why `value` cannot be stored, or None."""
    bad = _NEVER.search(value)
    if bad:
        return f"contains a control or bidirectional-formatting character (U+{ord(bad.group()):04X})"
    if not multiline:
        bad = _NOT_ON_A_LINE.search(value)
        if bad:
            return f"must be a single line (contains U+{ord(bad.group()):04X})"
    return None


def check_line(value: str) -> str:
    problem = text_problem(value, multiline=False)
    if problem:
        raise ValueError(problem)
    return value


def check_note(value: str) -> str:
    problem = text_problem(value, multiline=True)
    if problem:
        raise ValueError(problem)
    return value


Line = Annotated[str, AfterValidator(check_line)]
Note = Annotated[str, AfterValidator(check_note)]
