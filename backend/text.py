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


# The same rules as JSON Schema patterns, for the published document (ECMA-262 and Python `re` both
# read these escapes), so that a client or a fuzzer knows what a string may hold before sending it.
# Lone surrogates are left out of the pattern: a regex of code points cannot name them (they are
# not characters), and no UTF-8 client can send one except as a JSON escape, which stays refused.
_NEVER_CLASS = (
    "\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f\\u061c\\u200e\\u200f"
    "\\u202a-\\u202e\\u2066-\\u2069"
)
NOTE_PATTERN = f"^[^{_NEVER_CLASS}]*$"
# `(?!\n)`: Python's `$` also matches before a final line feed; ECMA's does not need it.
LINE_PATTERN = f"^[^{_NEVER_CLASS}\\u0009\\u000a\\u000d\\u2028\\u2029]*$(?!\\n)"

Line = Annotated[str, AfterValidator(check_line)]
Note = Annotated[str, AfterValidator(check_note)]
