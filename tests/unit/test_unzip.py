"""The unpacker's byte count: what is written is counted, whatever the archive declared."""

from __future__ import annotations

import io

import pytest

from warmstart.errors import InvalidParameterValueError
from warmstart.frontdoor.unzip import TOO_BIG, copy


def test_copy_stops_at_the_budget_whatever_was_declared():
    out = io.BytesIO()
    budget = [10_000]
    copy(io.BytesIO(b"x" * 6_000), out, budget, "a")
    assert budget == [4_000] and len(out.getvalue()) == 6_000
    with pytest.raises(InvalidParameterValueError, match=TOO_BIG):
        copy(io.BytesIO(b"y" * 6_000), out, budget, "b")
    assert len(out.getvalue()) == 6_000  # the chunk over the budget is not written
