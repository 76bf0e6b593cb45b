"""The JSON nesting limit (app/lti/nesting.py): the count that settles most documents, the scan."""

import json

import pytest

from app.lti import nesting


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.mark.parametrize("convert", [str, str.encode], ids=["text", "bytes"])
def test_the_limit_is_exact_whether_or_not_the_brackets_are_few(convert):
    at_limit, past = nested(nesting.MAX_JSON_DEPTH), nested(nesting.MAX_JSON_DEPTH + 1)
    assert not nesting.too_deep(convert(at_limit))
    assert nesting.too_deep(convert(past))
    # Many brackets, none deep: the count does not settle it, the scan does.
    wide = "[" + ",".join(["[{}]"] * 500) + "]"
    assert not nesting.too_deep(convert(wide))
    assert nesting.loads(convert(wide)) == json.loads(wide)
    # Brackets inside strings do not nest.
    quoted = json.dumps({"text": "[" * 1000 + "{" * 1000})
    assert not nesting.too_deep(convert(quoted))
    with pytest.raises(nesting.TooDeep):
        nesting.loads(convert('{"a": ' + nested(100_000) + "}"))


def test_a_document_with_few_brackets_is_parsed_as_json_parses_it():
    claims = {"iss": "https://lms.example", "aud": ["tool"], "context": {"id": "1"}}
    assert nesting.loads(json.dumps(claims)) == claims
