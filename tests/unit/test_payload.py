"""The Invoke payload check: what it accepts is what json.loads gives, what it refuses is said
in Lambda's words, and its depth limit is Jackson's 1,000 exactly."""

from __future__ import annotations

import json
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warmstart.engine import payload
from warmstart.errors import InvalidRequestContentError

documents = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@given(documents)
def test_what_it_accepts_is_what_json_gives(doc):
    text = json.dumps(doc, ensure_ascii=False).encode()
    assert payload.parse(text) == json.loads(text)
    assert payload.dumps(doc) == json.dumps(doc).encode()


@pytest.mark.parametrize("levels", [999, 1000])
def test_jacksons_depth_is_allowed(levels):
    text = b"[" * levels + b"]" * levels
    assert payload.parse(text) is not None  # on 3.11 past the recursion limit's reach
    assert payload.parse(b'{"a": "' + b"[" * 5000 + b'"}') == {"a": "[" * 5000}


@pytest.fixture
def raised_recursion_limit():
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(5000)
    yield
    sys.setrecursionlimit(before)


@pytest.mark.usefixtures("raised_recursion_limit")
def test_the_depth_holds_where_the_scanner_can_go_deeper():
    # With the recursion limit raised (or on Python 3.12+), the C scanner and encoder take what
    # Jackson refuses: the depth is then checked on what they gave.
    too_deep = b"[" * 1001 + b"]" * 1001
    with pytest.raises(InvalidRequestContentError, match=r"nesting depth \(1001\)"):
        payload.parse(too_deep)
    with pytest.raises(InvalidRequestContentError, match=r"nesting depth \(1001\)"):
        payload.dumps(json.loads(too_deep))
    wide = json.dumps([{"a": [i]} for i in range(2000)]).encode()  # many brackets, not deep
    assert payload.parse(wide) == json.loads(wide)


def test_one_more_level_is_refused_with_where():
    text = b'{"a": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    with pytest.raises(InvalidRequestContentError) as e:
        payload.parse(text)
    assert str(e.value).startswith(payload.PREFIX + "Document nesting depth (1001) exceeds")
    assert "[truncated 1507 bytes]; line: 1, column: 1006]" in str(e.value)
    assert e.value.detail.endswith("(line 1, column 1006)")


@pytest.mark.parametrize(
    "text, problem, where",
    [
        (b'{"a": NaN}', "Non-standard token 'NaN'", "line: 1, column: 10"),
        (b'{\n "a": [1,\n  -Infinity]}', "Non-standard token '-Infinity'", "line: 3, column: 12"),
        (b'["Infinity", Infinity]', "Non-standard token 'Infinity'", "line: 1, column: 22"),
        (b"\x97abc", "Invalid UTF-8 start byte 0x97", "line: 1, column: 2"),
        (b'"\xc3\x28"', "Invalid UTF-8 middle byte 0x28", "line: 1, column: 3"),
        (b"", "Expecting value", "line: 1, column: 1"),
        (b"{'a': 1}", "Expecting property name enclosed in double quotes", "line: 1, column: 2"),
    ],
)
def test_refusals_say_what_and_where(text, problem, where):
    with pytest.raises(InvalidRequestContentError) as e:
        payload.parse(text)
    message = str(e.value)
    assert message.startswith(payload.PREFIX + problem)
    assert message.endswith(where + "]")
    assert f'[Source: (byte[])"{text.decode("utf-8", "replace")}"' in message


def test_encodings_json_reads_are_read():
    assert payload.parse('{"a": 1}'.encode("utf-16")) == {"a": 1}
    assert payload.parse(b'\xef\xbb\xbf{"a": 1}') == {"a": 1}


def test_events_that_would_not_be_json():
    with pytest.raises(InvalidRequestContentError, match="Non-standard token 'NaN'"):
        payload.dumps({"x": [1.0, float("nan")]})
    circular: list[object] = []
    circular.append(circular)
    with pytest.raises(InvalidRequestContentError, match="Circular reference detected"):
        payload.dumps(circular)
    with pytest.raises(InvalidRequestContentError, match="not JSON serializable"):
        payload.dumps({1, 2})
