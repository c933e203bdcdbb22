"""The fast JSON paths give what the json module gives, errors included."""

from __future__ import annotations

import decimal
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warmstart.engine.runtime import jsonfast

documents = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@given(documents)
def test_dumps_and_loads_match_json(doc):
    assert jsonfast.dumps(doc) == json.dumps(doc)
    text = json.dumps(doc)
    assert jsonfast.loads(text) == json.loads(text)
    assert jsonfast.loads(text.encode()) == json.loads(text)


def test_whitespace_and_errors():
    assert jsonfast.loads(b'  {"a": 1} \n') == {"a": 1}
    for bad in (b"", b"{", b"[1,]", b"{} x", b"\xff"):
        with pytest.raises(ValueError):
            jsonfast.loads(bad)


def test_options_and_failures():
    ascii_dumps = jsonfast.make_dumps(ensure_ascii=True)
    utf8_dumps = jsonfast.make_dumps(ensure_ascii=False)
    assert ascii_dumps({"t": "é"}) == '{"t": "\\u00e9"}'
    assert utf8_dumps({"t": "é"}) == '{"t": "é"}'
    with pytest.raises(TypeError, match="Object of type set is not JSON serializable"):
        jsonfast.dumps({1, 2})
    loop: list = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular reference"):
        jsonfast.dumps(loop)
    dec = jsonfast.make_dumps(default=lambda o: float(o))
    assert dec({"d": decimal.Decimal("1.5")}) == '{"d": 1.5}'
