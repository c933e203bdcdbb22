"""Reading `-X importtime` output and summarizing benchmark samples."""

from __future__ import annotations

from warmstart.bench import init_imports, summary, top_packages

LOG = """\
INIT_START Runtime Version: python:3.11.v7
import time: self [us] | cumulative | imported package
import time:       100 |        100 |     email.errors
import time:      2000 |       2100 |   email.parser
import time:       300 |       2400 | email
import time:      5000 |       5000 | botocore.client
START RequestId: 1 Version: $LATEST
import time:      9999 |       9999 | late_import
END RequestId: 1
"""


def test_only_inits_imports_are_read():
    imports = init_imports(LOG)
    assert imports == [
        ("email.errors", 100, 100, 2),
        ("email.parser", 2000, 2100, 1),
        ("email", 300, 2400, 0),
        ("botocore.client", 5000, 5000, 0),
    ]


def test_imports_are_summed_by_top_level_package_and_averaged():
    run = init_imports(LOG)
    top = top_packages([run, run])
    assert top == [
        {"package": "botocore", "ms": 5.0, "modules": 1},
        {"package": "email", "ms": 2.4, "modules": 3},
    ]
    assert top_packages([run], limit=1) == top[:1]
    assert top_packages([]) == []


def test_summary():
    s = summary([float(v) for v in range(1, 101)])
    assert (s["p50"], s["p90"], s["p99"], s["max"], s["mean"]) == (50, 90, 99, 100, 50.5)
