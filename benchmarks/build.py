"""`warmstart build`: a first build (pip installs the requirements) against a second one with the
same requirements.txt (from the cache), in the same run.

    .venv/bin/python benchmarks/build.py            # the Powertools quickstart's, from PyPI
    .venv/bin/python benchmarks/build.py --quick    # a local wheel, no network (tests use it)

Prints one JSON document: each round's first and second build times, their medians, the
second's share of the first, and whether the second took under a second (the target). The first
build, pip downloading and installing for Lambda's platform, is the yardstick.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from warmstart.build import build  # noqa: E402

WHEEL = ROOT / "tests" / "apps" / "wheels" / "tinydep-1.0-py3-none-any.whl"
# What SAM's python3.11 hello-pt (Powertools) quickstart asks for.
PYPI_REQUIREMENTS = "requests\naws-lambda-powertools[tracer]\n"
HANDLER = "def handler(event, context):\n    return 'ok'\n"
TEMPLATE = (
    "Resources:\n  HelloWorldFunction:\n    Type: AWS::Serverless::Function\n    Properties:\n"
    "      Handler: app.handler\n      Runtime: python3.11\n      CodeUri: hello_world/\n"
)


def one_round(quick: bool) -> dict[str, float | int]:
    with tempfile.TemporaryDirectory() as tmp:
        app = Path(tmp)
        src = app / "hello_world"
        src.mkdir()
        (src / "app.py").write_text(HANDLER)
        if quick:
            shutil.copy(WHEEL, src)
            (src / "requirements.txt").write_text(f"./{WHEEL.name}\n")
        else:
            (src / "requirements.txt").write_text(PYPI_REQUIREMENTS)
        (app / "template.yaml").write_text(TEMPLATE)
        state = app / ".warmstart"
        [first] = build(app / "template.yaml", state_dir=state)
        [second] = build(app / "template.yaml", state_dir=state)
        assert not first.cached and second.cached
        files = sum(1 for p in second.folder.rglob("*") if p.is_file())
        return {"first_s": first.seconds, "second_s": second.seconds, "files": files}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="A local wheel, one round.")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rounds = [one_round(args.quick) for _ in range(1 if args.quick else args.rounds)]
    first = statistics.median(r["first_s"] for r in rounds)
    second = statistics.median(r["second_s"] for r in rounds)
    print(
        json.dumps(
            {
                "requirements": "a local wheel" if args.quick else PYPI_REQUIREMENTS.split(),
                "rounds": [{k: round(v, 3) for k, v in r.items()} for r in rounds],
                "first_build_s": round(first, 3),
                "second_build_s": round(second, 3),
                "second_of_first": round(second / first, 3) if first else None,
                "targets": {"second_build_s<1": second < 1.0},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
