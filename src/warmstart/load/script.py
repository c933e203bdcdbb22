"""Artillery test scripts: the part `warmstart load` runs, read and checked.

Supported: `config.target`, `config.phases` (`duration`, `arrivalRate`, `rampTo`,
`arrivalCount`, `pause`, `name`), `config.variables`; `scenarios` with `name`, `weight`,
`engine` (`http`, the default, or `lambda`) and a `flow` of `get` / `post` / `put` / `delete`
steps (`url`, `json`, `body`, `headers`), `think` pauses, and Artillery's lambda engine `invoke`
steps (`payload`). Anything else is reported by name, never silently ignored.
"""

from __future__ import annotations

import random
import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import WarmstartError

__all__ = ["Phase", "Scenario", "Script", "ScriptError", "Step", "load_script", "render"]

METHODS = ("get", "post", "put", "delete")
PHASE_KEYS = {"duration", "arrivalRate", "rampTo", "arrivalCount", "pause", "name"}
CONFIG_KEYS = {"target", "phases", "variables", "engines", "lambda"}
SCENARIO_KEYS = {"name", "weight", "engine", "flow"}
REQUEST_KEYS = {"url", "json", "body", "headers"}


class ScriptError(WarmstartError):
    """The test script cannot be run; the message says where and why."""


@dataclass(frozen=True)
class Phase:
    name: str
    duration_s: float
    rate: float = 0.0  # arrivals per second at the start
    ramp_to: float | None = None  # ... and at the end
    count: int | None = None  # or: this many arrivals, evenly over the duration
    pause: bool = False


@dataclass(frozen=True)
class Step:
    kind: str  # get | post | put | delete | think | invoke
    spec: dict[str, Any] = field(default_factory=dict)  # the step's options (templates kept)


@dataclass(frozen=True)
class Scenario:
    name: str
    engine: str  # http | lambda
    weight: float
    flow: tuple[Step, ...]


@dataclass
class Script:
    target: str | None
    phases: list[Phase]
    scenarios: list[Scenario]
    variables: dict[str, list[Any]]
    unknown: list[str] = field(default_factory=list)  # keys not understood, by path


def _number(value: Any, where: str, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ScriptError(f"{where}: expected a number >= 0, got {value!r}")
    if integer and int(value) != value:
        raise ScriptError(f"{where}: expected a whole number, got {value!r}")
    return float(value)


def _phase(raw: Any, i: int, unknown: list[str]) -> Phase:
    where = f"config.phases[{i}]"
    if not isinstance(raw, dict):
        raise ScriptError(f"{where}: expected a mapping")
    unknown += [f"{where}.{k}" for k in raw if k not in PHASE_KEYS]
    name = str(raw.get("name", f"phase {i + 1}"))
    if "pause" in raw:
        return Phase(name, _number(raw["pause"], f"{where}.pause"), pause=True)
    if "duration" not in raw:
        raise ScriptError(f"{where}: needs a duration (seconds), or is a pause")
    duration = _number(raw["duration"], f"{where}.duration")
    if "arrivalCount" in raw:
        count = _number(raw["arrivalCount"], f"{where}.arrivalCount", integer=True)
        return Phase(name, duration, count=int(count))
    if "arrivalRate" not in raw:
        raise ScriptError(f"{where}: needs arrivalRate or arrivalCount")
    rate = _number(raw["arrivalRate"], f"{where}.arrivalRate")
    ramp = _number(raw["rampTo"], f"{where}.rampTo") if "rampTo" in raw else None
    return Phase(name, duration, rate, ramp)


def _step(raw: Any, where: str, engine: str, unknown: list[str]) -> Step:
    if not isinstance(raw, dict) or not raw:
        raise ScriptError(f"{where}: a step is one of {', '.join(METHODS)}, think or invoke")
    kind, spec = next(iter(raw.items()))  # the step's name comes first (`loop: ...`, `count`)
    if kind in (*METHODS, "think", "invoke"):
        unknown += [f"{where}.{k}" for k in list(raw)[1:]]
    if kind == "think":
        return Step("think", {"seconds": _number(spec, f"{where}.think")})
    if kind in METHODS:
        if engine != "http":
            raise ScriptError(f"{where}: {kind} is an HTTP step, in a {engine} scenario")
        if not isinstance(spec, dict) or "url" not in spec:
            raise ScriptError(f"{where}.{kind}: needs a url")
        unknown += [f"{where}.{kind}.{k}" for k in spec if k not in REQUEST_KEYS]
        return Step(kind, {k: v for k, v in spec.items() if k in REQUEST_KEYS})
    if kind == "invoke":
        if engine != "lambda":
            raise ScriptError(f"{where}: invoke needs `engine: lambda` on the scenario")
        spec = spec or {}
        if not isinstance(spec, dict):
            raise ScriptError(f"{where}.invoke: expected a mapping (payload: ...)")
        unknown += [f"{where}.invoke.{k}" for k in spec if k not in ("payload", "target")]
        return Step("invoke", {k: v for k, v in spec.items() if k in ("payload", "target")})
    unknown.append(f"{where}.{kind}")
    return Step("unknown", {"name": kind})


def load_script(path: Path) -> Script:
    """Read and check an Artillery YAML test script.

    Example: load_script(Path("load.yml")).phases[0].rate
    """
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as e:
        raise ScriptError(f"cannot read {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ScriptError(f"{path} is not valid YAML: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("config"), dict):
        raise ScriptError(f"{path}: expected `config:` and `scenarios:` at the top")
    unknown = [k for k in doc if k not in ("config", "scenarios")]
    config = doc["config"]
    unknown += [f"config.{k}" for k in config if k not in CONFIG_KEYS]
    phases_raw = config.get("phases")
    if not isinstance(phases_raw, list) or not phases_raw:
        raise ScriptError(f"{path}: config.phases needs at least one phase")
    phases = [_phase(p, i, unknown) for i, p in enumerate(phases_raw)]
    variables = {}
    for name, value in (config.get("variables") or {}).items():
        variables[str(name)] = value if isinstance(value, list) else [value]
    scenarios_raw = doc.get("scenarios")
    if not isinstance(scenarios_raw, list) or not scenarios_raw:
        raise ScriptError(f"{path}: needs at least one scenario")
    scenarios = []
    for i, raw in enumerate(scenarios_raw):
        where = f"scenarios[{i}]"
        if not isinstance(raw, dict) or not isinstance(raw.get("flow"), list):
            raise ScriptError(f"{where}: needs a flow (a list of steps)")
        unknown += [f"{where}.{k}" for k in raw if k not in SCENARIO_KEYS]
        engine = str(raw.get("engine", "http"))
        if engine not in ("http", "lambda"):
            raise ScriptError(f"{where}.engine: {engine!r} is not supported (http or lambda)")
        flow = tuple(
            _step(s, f"{where}.flow[{j}]", engine, unknown) for j, s in enumerate(raw["flow"])
        )
        weight = _number(raw.get("weight", 1), f"{where}.weight")
        scenarios.append(Scenario(str(raw.get("name", f"scenario {i + 1}")), engine, weight, flow))
    if all(s.weight == 0 for s in scenarios):
        raise ScriptError(f"{path}: every scenario has weight 0")
    target = config.get("target")
    if any(s.engine == "http" for s in scenarios) and not target:
        raise ScriptError(f"{path}: HTTP scenarios need config.target (e.g. http://127.0.0.1:3000)")
    return Script(None if target is None else str(target), phases, scenarios, variables, unknown)


_TEMPLATE = re.compile(r"\{\{\s*(.*?)\s*\}\}")
_CALL = re.compile(r"^\$(\w+)\((.*)\)$")


def _evaluate(expr: str, variables: dict[str, Any], rng: random.Random) -> Any:
    call = _CALL.match(expr)
    if call:
        name, args_text = call.groups()
        args = [a.strip() for a in args_text.split(",") if a.strip()]
        try:
            if name == "randomNumber" and len(args) == 2:
                return rng.randint(int(args[0]), int(args[1]))
            if name == "randomString" and len(args) <= 1:
                length = int(args[0]) if args else 10
                return "".join(rng.choices(string.ascii_letters + string.digits, k=length))
        except ValueError:
            pass
        if name in ("randomNumber", "randomString"):
            raise ScriptError(
                f"{{{{ {expr} }}}}: use $randomNumber(min, max) or $randomString([length])"
            )
        raise ScriptError(f"unknown template function ${name}()")
    if expr in variables:
        return variables[expr]
    raise ScriptError(f"template {{{{ {expr} }}}}: no such variable")


def render(value: Any, variables: dict[str, Any], rng: random.Random) -> Any:
    """Fill `{{ ... }}` templates in strings (recursively in lists and mappings).

    A string that is one template keeps the value's type ({{ $randomNumber(1, 9) }} -> 7).

    Example: render({"id": "{{ $randomNumber(1, 100) }}"}, {}, random.Random(1)) -> {"id": 18}
    """
    if isinstance(value, str):
        whole = _TEMPLATE.fullmatch(value.strip())
        if whole:
            return _evaluate(whole.group(1), variables, rng)
        return _TEMPLATE.sub(lambda m: str(_evaluate(m.group(1), variables, rng)), value)
    if isinstance(value, list):
        return [render(v, variables, rng) for v in value]
    if isinstance(value, dict):
        return {k: render(v, variables, rng) for k, v in value.items()}
    return value
