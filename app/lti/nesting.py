"""JSON with a nesting limit: what an LMS or an API client sends is measured before it is parsed.

Python's `json` recurses once per level of nesting, so `[[[[…]]]]` a few thousand levels deep
ends in a RecursionError (a 500) instead of a clear refusal. `loads` counts the brackets outside
strings first, in one pass that never recurses, and refuses a document that nests deeper than
`MAX_JSON_DEPTH` with `TooDeep`, a ValueError like any other unparseable document.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Real documents (an OpenID configuration, a key set, a registration, an API body) nest four
# or five levels deep; 32 leaves room for any honest extension and none for a hostile one.
MAX_JSON_DEPTH = 32


# A string (escapes and all, even one left open at the end) or a bracket: brackets inside
# strings are skipped with their string.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]', re.DOTALL)


class TooDeep(ValueError):
    """The JSON nests objects and arrays deeper than MAX_JSON_DEPTH levels."""


def depth(text: str | bytes) -> int:
    """Return how deeply objects and arrays nest in a JSON text, counting brackets outside strings.

    The scan stops counting once past MAX_JSON_DEPTH (it returns MAX_JSON_DEPTH + 1 then).
    """
    if isinstance(text, bytes | bytearray):
        text = bytes(text).decode("utf-8", errors="replace")
    deepest = level = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            level += 1
            if level > deepest:
                deepest = level
                if deepest > MAX_JSON_DEPTH:
                    break
        elif token in ("]", "}"):
            level -= 1
    return deepest


def too_deep(text: str | bytes) -> bool:
    """Return True when the JSON text nests deeper than MAX_JSON_DEPTH."""
    # Nesting never exceeds the number of opening brackets. Counted in C, that settles nearly
    # every real document (an id_token's claims, a configuration) without scanning its tokens.
    brackets = b"[{" if isinstance(text, bytes | bytearray) else "[{"
    if text.count(brackets[:1]) + text.count(brackets[1:]) <= MAX_JSON_DEPTH:
        return False
    return depth(text) > MAX_JSON_DEPTH


def check_depth(text: str | bytes) -> None:
    """Raise TooDeep when the JSON text nests deeper than MAX_JSON_DEPTH."""
    if too_deep(text):
        raise TooDeep(f"the JSON nests more than {MAX_JSON_DEPTH} levels deep")


def loads(text: str | bytes) -> Any:
    """Parse JSON like json.loads, refusing with TooDeep what nests deeper than MAX_JSON_DEPTH."""
    check_depth(text)
    return json.loads(text)
