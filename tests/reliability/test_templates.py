"""Malformed templates: a clear one-line error or a valid load, never a traceback or a hang.

A property test mutates valid templates (drops, replaces and retypes values, swaps maps and
lists, inserts intrinsics with wrong arguments, nests deeply, shares values so YAML writes
aliases, inserts bad bytes); explicit tests pin each case found by hand.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from conftest import BASIC, PY, spec
from warmstart import TemplateError, WarmstartError, load_template
from warmstart.errors import InvalidParameterValueError
from warmstart.frontdoor.apigw import routes
from warmstart.sam import CfnLoader

SAM = """
AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Parameters:
  Stage: {Type: String, Default: dev, AllowedValues: [dev, prod]}
  Memory: {Type: Number, Default: 256, MinValue: 128}
  Names: {Type: CommaDelimitedList, Default: "a,b"}
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
  NotProd: !Not [!Condition IsProd]
  Both: !And [!Condition NotProd, !Or [!Condition IsProd, !Equals [a, a]]]
Mappings:
  Sizes:
    dev: {Timeout: 5}
    prod: {Timeout: 20}
Globals:
  Function:
    Runtime: python3.12
    CodeUri: src/
    MemorySize: !Ref Memory
    Layers: [!Ref Shared]
    Environment:
      Variables: {STAGE: !Ref Stage}
Resources:
  Shared:
    Type: AWS::Serverless::LayerVersion
    Properties: {ContentUri: layer/}
  Rest:
    Type: AWS::Serverless::Api
    Properties: {StageName: dev}
  Table:
    Type: AWS::DynamoDB::Table
  Hello:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.handler
      Timeout: !FindInMap [Sizes, !Ref Stage, Timeout]
      Architectures: [arm64]
      Environment:
        Variables:
          TABLE_ARN: !GetAtt Table.Arn
          URL: !Sub "https://${AWS::Region}.example.com/${Stage}"
          JOINED: !Join ["-", [a, !Ref Stage, !Select [1, !Ref Names]]]
          MODE: !If [Both, fast, safe]
          SPLIT: !Select [0, !Split [",", "x,y"]]
          B64: !Base64 hi
          JSON: !ToJsonString {a: [1, 2]}
          ZONES: !Join [",", !GetAZs ""]
          SUBS: !Sub ["${X}-${!Literal}", {X: !Ref AWS::Partition}]
          NONE: !If [IsProd, x, !Ref AWS::NoValue]
      AutoPublishAlias: live
      ProvisionedConcurrencyConfig: {ProvisionedConcurrentExecutions: 1}
      ReservedConcurrentExecutions: 5
      SnapStart: {ApplyOn: PublishedVersions}
      EphemeralStorage: {Size: 1024}
      LoggingConfig: {LogFormat: JSON, ApplicationLogLevel: DEBUG}
      EventInvokeConfig: {MaximumRetryAttempts: 1}
      Events:
        Get:
          Type: Api
          Properties: {RestApiId: !Ref Rest, Path: "/items/{id}", Method: get}
        Http:
          Type: HttpApi
          Properties: {Path: "/files/{proxy+}", Method: ANY, PayloadFormatVersion: "1.0"}
  Named:
    Type: AWS::Serverless::Function
    Condition: IsProd
    Properties: {Handler: app.handler, FunctionName: named-fn}
"""
CLOUDFORMATION = {
    "Resources": {
        "Fn": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Handler": "index.handler",
                "Runtime": "python3.11",
                "Code": "code",
                "FunctionName": "my-function",
                "MemorySize": 512,
                "Environment": {
                    "Variables": {"A": {"Fn::Join": ["", ["x", {"Ref": "AWS::StackName"}]]}}
                },
            },
        },
        "Alias": {
            "Type": "AWS::Lambda::Alias",
            "Properties": {
                "FunctionName": {"Ref": "Fn"},
                "Name": "live",
                "FunctionVersion": "1",
                "ProvisionedConcurrencyConfig": {"ProvisionedConcurrentExecutions": 1},
            },
        },
    }
}
BASES = [yaml.load(SAM, Loader=CfnLoader), CLOUDFORMATION]
FUNCTIONS = [
    "Ref", "Condition", "Fn::Sub", "Fn::If", "Fn::GetAtt", "Fn::Join", "Fn::Select", "Fn::Split",
    "Fn::FindInMap", "Fn::Base64", "Fn::GetAZs", "Fn::ImportValue", "Fn::Cidr", "Fn::Equals",
    "Fn::Not", "Fn::And", "Fn::Or", "Fn::ToJsonString", "Fn::Length", "Fn::Transform",
    "Fn::Nope", "Fn::ForEach::Things",
]  # fmt: skip
WORDS = [
    "", "src/", "..", "/", "s3://bucket/key", "x.zip", "app.handler", "python3.12", "arm64", "Zip",
    "Image", "PublishedVersions", "JSON", "live", "/{proxy+}/x", "items", "$default", "ANY", "1.0",
    "AWS::Serverless::Function", "AWS::Serverless::Api", "AWS::Lambda::Alias", "Stage", "IsProd",
    "Both", "Shared", "Table", "Rest", "Hello", "Fn", "AWS::NoValue", "AWS::Region",
    "AWS::NotificationARNs", "${Stage}", "${Nope}", "${Table.Arn}", "${AWS::NoValue}", "a,b",
    "Table.Arn", "Sizes", "dev", "Timeout", "*", "100000", "-1", "1e999",
]  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(),  # NaN and infinities too
    st.text(max_size=12),  # any characters, NUL and controls included
    st.sampled_from(WORDS),
)
JUNK = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.sampled_from(["Variables", "Type", "Properties", "Ref", "X"]), inner, max_size=3
        ),
        st.builds(lambda f, a: {f: a}, st.sampled_from(FUNCTIONS), inner),
    ),
    max_leaves=8,
)
MUTATIONS = ("drop", "replace", "retype", "swap", "intrinsic", "deepen", "share")
BAD_BYTES = [
    b"\x00", b"\xff", b"\xfe\xff", b"\xc3", b"\xed\xa0\x80", b"\t", b"\n", b" ", b": ", b"- ",
    b"[", b"{", b"}", b"&a ", b"*a ", b"!Ref ", b"!If ", b"!Nope ", b"<<: *a\n", b"'", b'"',
    b"---\n", b"%YAML 1.1\n", b'"\\ud800"', b'"\\0"', b"!!binary ", b"!!python/object:os.system ",
    b"? [a]\n", b"\x1b",
]  # fmt: skip


class Hang(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Bounds one load: a hang fails the test instead of stopping CI (main thread only). The
    timer pytest-timeout may have set is put back afterwards."""

    def expire(*_: Any) -> None:
        raise Hang(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    outer, interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    started = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer:
            left = max(outer - (time.monotonic() - started), 0.001)
            signal.setitimer(signal.ITIMER_REAL, left, interval)


def load_or_clear_error(path: Path) -> str:
    """'loaded', or the error: a WarmstartError of one line naming the file. Anything else
    (another exception, a hang) fails the test."""
    try:
        with time_limit(10):
            load_template(path)
    except WarmstartError as e:
        message = str(e)
        assert "\n" not in message and "\r" not in message, message
        assert message.startswith(f"{path}: "), message
        return message
    return "loaded"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("templates")
    for folder in ("src", "layer", "code"):
        (root / folder).mkdir()
    return root


def nodes(doc: Any) -> list[tuple[Any, ...]]:
    """Every value's path in the document, the root's too."""
    out: list[tuple[Any, ...]] = []
    stack: list[tuple[Any, tuple[Any, ...]]] = [(doc, ())]
    while stack:
        value, path = stack.pop()
        out.append(path)
        items = (
            value.items()
            if isinstance(value, dict)
            else enumerate(value)
            if isinstance(value, list)
            else ()
        )
        stack += [(v, (*path, k)) for k, v in items]
    return out


def get(doc: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        doc = doc[key]
    return doc


def mutate(doc: Any, path: tuple[Any, ...], kind: str, junk: Any, other: tuple[Any, ...]) -> Any:
    """The document with one change at path (the root may change too)."""
    value = get(doc, path)
    if kind == "drop":
        new: Any = None
        if path:
            parent = get(doc, path[:-1])
            del parent[path[-1]]
            return doc
    elif kind == "replace":
        new = junk
    elif kind == "retype":
        new = [str(value), [value], {"X": value}, None, 0, True][len(path) % 6]
    elif kind == "swap":
        new = (
            list(value.values())
            if isinstance(value, dict)
            else {str(i): v for i, v in enumerate(value)}
            if isinstance(value, list)
            else [value]
        )
    elif kind == "intrinsic":
        new = {FUNCTIONS[len(path) % len(FUNCTIONS)]: junk}
    elif kind == "deepen":
        new = value
        for level in range(45 + 5 * (len(path) % 4)):  # around the limit of 50
            new = [new] if level % 2 else {"X": new}
    elif path[: len(other)] == other:
        return doc  # sharing an ancestor would make a cycle, which no writer can write
    else:  # share: one object in two places, which YAML writes as an anchor and an alias
        new = get(doc, other)
    if not path:
        return new
    get(doc, path[:-1])[path[-1]] = new
    return doc


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    doc = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(1, 2))):
        paths = nodes(doc)[::-1]  # the root last: hypothesis favours the first items
        path = draw(st.sampled_from(paths))
        doc = mutate(
            doc,
            path,
            draw(st.sampled_from(MUTATIONS)),
            draw(JUNK),
            draw(st.sampled_from(paths)),
        )
    if draw(st.booleans()):
        text = json.dumps(doc).encode()
    else:
        text = yaml.safe_dump(doc, allow_unicode=draw(st.booleans())).encode()
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(BAD_BYTES)) + text[at:]
    return text


@settings(
    max_examples=1000,
    derandomize=True,  # the same examples on every run: reproducible in CI
    database=None,
    deadline=None,  # a slow machine is not a failure; a hang is (time_limit)
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(text=mutated())
def test_mutated_templates_load_or_fail_with_one_clear_line(project: Path, text: bytes) -> None:
    note(f"template:\n{text.decode('utf-8', 'backslashreplace')}")
    path = project / "template.yaml"
    path.write_bytes(text)
    outcome = load_or_clear_error(path)
    event(
        outcome if outcome == "loaded" else outcome.split(": ")[-1][:40]
    )  # for --hypothesis-show-statistics


def test_the_unmutated_templates_load(project: Path) -> None:
    for i, doc in enumerate(BASES):
        path = project / f"base{i}.json"
        path.write_text(json.dumps(doc))
        assert load_or_clear_error(path) == "loaded"


# -- each case, explicitly ---------------------------------------------------------------------

FUNCTION = """
Resources:
  F:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.handler
      Runtime: python3.12
      CodeUri: src/
"""


def function(extra: str) -> str:
    """FUNCTION with these property lines added (replacing those of the same names)."""
    keys = {line.split(":")[0].strip() for line in extra.splitlines()}
    kept = [line for line in FUNCTION.splitlines() if line.split(":")[0].strip() not in keys]
    return "\n".join(kept) + "\n" + extra


def error(project: Path, text: str | bytes, name: str = "template.yaml") -> TemplateError:
    path = project / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(textwrap.dedent(text))
    with pytest.raises(TemplateError) as e, time_limit(20):
        load_template(path)
    message = str(e.value)
    assert "\n" not in message and message.startswith(f"{path}: "), message
    return e.value


@pytest.mark.parametrize(
    "extra, where, problem",
    [
        ("      Timeout: !If [Always, 1]\n", "Resources.F.Properties.Timeout",
         "Fn::If takes [condition name, value if true, value if false] (got 2 items)"),
        ("      Timeout: !If [Always, 1, 2, 3]\n", "Resources.F.Properties.Timeout",
         "Fn::If takes [condition name, value if true, value if false] (got 4 items)"),
        ("      Timeout: !If Always\n", "Resources.F.Properties.Timeout",
         "Fn::If takes [condition name, value if true, value if false] (got 'Always')"),
        ("      Timeout: !If [[x], 1, 2]\n", "Resources.F.Properties.Timeout",
         "must be the name of a condition (got a list)"),
        ("      Timeout: !If [Nope, 1, 2]\n", "Resources.F.Properties.Timeout",
         "condition 'Nope' is not defined in Conditions"),
        ("      Timeout: !Ref [a]\n", "Resources.F.Properties.Timeout",
         "Ref takes the name of a parameter or resource (got a list)"),
        ("      Timeout: !Ref Nope\n", "Resources.F.Properties.Timeout",
         "Ref 'Nope': no parameter or resource has that name"),
        ("      Handler: !Sub [a]\n", "Resources.F.Properties.Handler",
         "Fn::Sub takes a text, or [text, {variable: value}] (got 1 item)"),
        ("      Handler: !Sub [a, b]\n", "Resources.F.Properties.Handler",
         "Fn::Sub takes a text, or [text, {variable: value}] (got a list)"),
        ("      Handler: !Sub {a: b}\n", "Resources.F.Properties.Handler",
         "Fn::Sub takes a text, or [text, {variable: value}] (got a map)"),
        ("      Handler: !Sub '${AWS::NotificationARNs}'\n", "Resources.F.Properties.Handler",
         "Fn::Sub: ${AWS::NotificationARNs} is a list, not a text"),
        ("      Handler: !Join [',']\n", "Resources.F.Properties.Handler",
         "Fn::Join takes [delimiter, [values]] (got 1 item)"),
        ("      Handler: !Join [',', a]\n", "Resources.F.Properties.Handler",
         "must be a list of values to join (got 'a')"),
        ("      Handler: !Join [',', [{a: b}]]\n", "Resources.F.Properties.Handler",
         "Fn::Join can join text, not a map"),
        ("      Handler: !Join [[], [a]]\n", "Resources.F.Properties.Handler",
         "Fn::Join takes a text delimiter (got a list)"),
        ("      Handler: !Select [x, [a]]\n", "Resources.F.Properties.Handler",
         "Fn::Select's index must be a whole number (got 'x')"),
        ("      Handler: !Select [3, [a]]\n", "Resources.F.Properties.Handler",
         "Fn::Select: index 3 is outside the list of 1 values"),
        ("      Handler: !Select [0, a]\n", "Resources.F.Properties.Handler",
         "must be a list to select from (got 'a')"),
        ("      Handler: !Split [',']\n", "Resources.F.Properties.Handler",
         "Fn::Split takes [delimiter, text] (got 1 item)"),
        ("      Handler: !Split ['', abc]\n", "Resources.F.Properties.Handler",
         "Fn::Split's delimiter must not be empty"),
        ("      Handler: !FindInMap [A, b]\n", "Resources.F.Properties.Handler",
         "Fn::FindInMap takes [map name, top-level key, second-level key] (and "
         "{DefaultValue: value}) (got 2 items)"),
        ("      Handler: !FindInMap [A, b, c]\n", "Resources.F.Properties.Handler",
         "Fn::FindInMap: Mappings has no 'A'"),
        ("      Handler: !FindInMap [A, b, c, {Default: 1}]\n", "Resources.F.Properties.Handler",
         "Fn::FindInMap's fourth item must be {DefaultValue: value} (got a map)"),
        ("      Handler: !Equals [a]\n", "Resources.F.Properties.Handler",
         "Fn::Equals takes [value, value] (got 1 item)"),
        ("      Handler: !Not [a, b]\n", "Resources.F.Properties.Handler",
         "Fn::Not takes [a condition: Fn::Equals, Fn::And, Fn::Or, Fn::Not or Condition] (got 2 items)"),
        ("      Handler: !Not [maybe]\n", "Resources.F.Properties.Handler",
         "must be a condition: Fn::Equals, Fn::And, Fn::Or, Fn::Not or Condition (got 'maybe')"),
        ("      Handler: !And [true]\n", "Resources.F.Properties.Handler",
         "Fn::And takes a list of 2 to 10 conditions (got 1 item)"),
        ("      Handler: !Or [a, b, c, d, e, f, g, h, i, j, k]\n", "Resources.F.Properties.Handler",
         "Fn::Or takes a list of 2 to 10 conditions (got 11 items)"),
        ("      Handler: !Condition [a]\n", "Resources.F.Properties.Handler",
         "must be the name of a condition (got a list)"),
        ("      Handler: !GetAtt Nope\n", "Resources.F.Properties.Handler",
         "Fn::GetAtt takes [resource, attribute] or 'Resource.Attribute' (got 'Nope')"),
        ("      Handler: !GetAtt [F, a, b]\n", "Resources.F.Properties.Handler",
         "Fn::GetAtt takes [resource, attribute] or 'Resource.Attribute' (got 3 items)"),
        ("      Handler: !GetAtt Nope.Arn\n", "Resources.F.Properties.Handler",
         "Fn::GetAtt: no resource is named 'Nope'"),
        ("      Handler: !GetAtt F.Arn\n", "Resources.F.Properties.Handler",
         "must be a text (got Fn::GetAtt F.Arn, which cannot be resolved locally)"),
        ("      Handler: !Base64 [a]\n", "Resources.F.Properties.Handler",
         "Fn::Base64 takes a text (got a list)"),
        ("      Handler: !GetAZs [a]\n", "Resources.F.Properties.Handler",
         "Fn::GetAZs takes a region name, or '' for this one (got a list)"),
        ("      Handler: !ImportValue {a: b}\n", "Resources.F.Properties.Handler",
         "Fn::ImportValue takes the name of an exported value (got a map)"),
        ("      Handler: !Cidr [a, b]\n", "Resources.F.Properties.Handler",
         "Fn::Cidr takes [ip block, count, cidr bits] (got 2 items)"),
        ("      Handler: !ToJsonString abc\n", "Resources.F.Properties.Handler",
         "Fn::ToJsonString takes a map or a list (got 'abc')"),
        ("      Timeout: !Length abc\n", "Resources.F.Properties.Timeout",
         "must be a list (the argument of Fn::Length) (got 'abc')"),
        ("      Handler: !Transform [a]\n", "Resources.F.Properties.Handler",
         "must be {Name: macro, Parameters: {...}} (Fn::Transform) (got a list)"),
        ("      Handler: {'Fn::Nope': 1}\n", "Resources.F.Properties.Handler",
         "Fn::Nope is not a CloudFormation function"),
    ],
)  # fmt: skip
def test_every_intrinsic_checks_its_arguments(project, extra, where, problem):
    e = error(project, "Conditions:\n  Always: !Equals [a, a]\n" + function(extra))
    assert (e.where, e.problem) == (where, problem)


@pytest.mark.parametrize(
    "conditions, cycle",
    [
        ("  A: !Condition A\n", "A -> A"),
        ("  A: !Condition B\n  B: !Not [!Condition A]\n", "A -> B -> A"),
        ("  A: !And [!Condition B, !Equals [a, a]]\n  B: !Or [!Condition C, !Equals [a, b]]\n"
         "  C: !If [A, true, false]\n", "A -> B -> C -> A"),
    ],
)  # fmt: skip
def test_circular_conditions_are_named(project, conditions, cycle):
    e = error(project, "Conditions:\n" + conditions + FUNCTION.lstrip())
    assert e.problem == f"the conditions refer to each other in a circle: {cycle}"


def test_a_long_chain_of_conditions_is_bounded(project):
    chain = "".join(f"  C{i}: !Condition C{i + 1}\n" for i in range(300))
    e = error(project, "Conditions:\n" + chain + "  C300: !Equals [a, a]\n" + FUNCTION.lstrip())
    assert (
        "nested more than 100 levels deep, with the conditions and values it refers to" in e.problem
    )


@pytest.mark.parametrize(
    "body, where, problem",
    [
        ("Globals: [1]\n" + FUNCTION, "Globals", "must be a map (got a list)"),
        ("Globals:\n  Function: abc\n" + FUNCTION, "Globals.Function", "must be a map (got 'abc')"),
        ("Globals:\n  Functions: {}\n" + FUNCTION, "Globals.Functions",
         "'Functions' is not a section of Globals (Function, Api, HttpApi, SimpleTable, "
         "LayerVersion, StateMachine)"),
        ("Parameters: [1]\n" + FUNCTION, "Parameters", "must be a map (got a list)"),
        ("Parameters:\n  P: abc\n" + FUNCTION, "Parameters.P",
         "must be a map (Type, Default, ...) (got 'abc')"),
        ("Parameters:\n  P: {Type: [a]}\n" + FUNCTION, "Parameters.P.Type",
         "must be a parameter type (got a list)"),
        ("Parameters:\n  P: {Type: String, Default: {a: b}}\n" + FUNCTION, "Parameters.P.Default",
         "must be a text, a number or a list (got a map)"),
        ("Parameters:\n  P: {Type: Number, Default: abc}\n" + FUNCTION, "Parameters.P",
         "'abc' is not a number (Type: Number)"),
        ("Parameters:\n  P: {Type: String, Default: abc, AllowedPattern: '[a-z'}\n" + FUNCTION,
         "Parameters.P.AllowedPattern", "is not a regular expression: unterminated character set at position 0"),
        ("Parameters:\n  P: {Type: String, Default: abc, MaxLength: 2}\n" + FUNCTION,
         "Parameters.P", "'abc' is not within MaxLength 2"),
        ("Conditions: [1]\n" + FUNCTION, "Conditions", "must be a map (got a list)"),
        ("Mappings:\n  M: [1]\n" + FUNCTION, "Mappings.M", "must be a map (got a list)"),
        ("Resources: [1]\n", "Resources", "must be a map of resources (got a list)"),
        ("Resources:\n  F: abc\n", "Resources.F",
         "must be a resource (a map with Type and Properties) (got 'abc')"),
        ("Resources:\n  F: {Properties: {}}\n", "Resources.F.Type", "is required"),
        ("Resources:\n  F: {Type: [a]}\n", "Resources.F.Type", "must be a resource type (got a list)"),
        ("Resources:\n  F: {Type: AWS::Serverless::Function, Properties: [a]}\n",
         "Resources.F.Properties", "must be a map (got a list)"),
        ("Resources:\n  F: {Type: AWS::Serverless::Function, Properties: abc}\n",
         "Resources.F.Properties", "must be a map (got 'abc')"),
        ("Resources:\n  F: {Type: AWS::Serverless::Function, Condition: [a]}\n",
         "Resources.F.Condition", "must be the name of a condition (got a list)"),
        ("Resources:\n  F: {Type: AWS::Serverless::Function, IgnoreGlobals: 1}\n",
         "Resources.F.IgnoreGlobals", "must be '*' or a list of property names (got 1)"),
        ("Resources:\n  Fn::ForEach::Things: [a, [b], {}]\n", "Resources.Fn::ForEach::Things",
         "Fn::ForEach (AWS::LanguageExtensions) is not supported"),
    ],
)  # fmt: skip
def test_every_section_checks_its_type(project, body, where, problem):
    e = error(project, body)
    assert (e.where, e.problem) == (where, problem)


@pytest.mark.parametrize(
    "props, where, problem",
    [
        ("Environment: [1]", "Environment", "must be a map (got a list)"),
        ("Environment: abc", "Environment", "must be a map (got 'abc')"),
        ("Environment: {Variables: [1]}", "Environment.Variables", "must be a map (got a list)"),
        ("Environment: {Variables: {A: {b: c}}}", "Environment.Variables.A", "must be a text (got a map)"),
        ("Environment: {Variables: {A: [1]}}", "Environment.Variables.A", "must be a text (got a list)"),
        ("Environment: {Variables: {A: null}}", "Environment.Variables.A", "must be a text (got nothing)"),
        ('Environment: {Variables: {A: "a\\0b"}}', "Environment.Variables.A",
         "'a\\x00b' contains a NUL character"),
        ('Environment: {Variables: {A: "\\ud800"}}', "Environment.Variables.A",
         "'\\ud800' contains '\\ud800', which is not a character"),
        ("Handler: 5", "Handler", "must be a text (got 5)"),
        ("Handler: [a]", "Handler", "must be a text (got a list)"),
        ("Runtime: {a: b}", "Runtime", "must be a text (got a map)"),
        ("CodeUri: [src]", "CodeUri", "must be a local folder (got a list)"),
        ("CodeUri: s3://b/k", "CodeUri", "points to S3; warmstart needs a local folder"),
        ("CodeUri: app.zip", "CodeUri", "'app.zip' is an archive; point it at the unpacked folder"),
        ("FunctionName: [a]", "FunctionName", "must be a text (got a list)"),
        ("FunctionName: a/b", "FunctionName", "must be 1-64 letters, digits, hyphens or underscores"),
        ("MemorySize: big", "MemorySize", "must be an integer from 128 to 10240 (got 'big')"),
        ("MemorySize: 12.5", "MemorySize", "must be an integer from 128 to 10240 (got 12.5)"),
        ("MemorySize: true", "MemorySize", "must be an integer from 128 to 10240 (got true)"),
        ("Timeout: [3]", "Timeout", "must be an integer from 1 to 900 (got a list)"),
        ("Architectures: arm64", "Architectures", "must be [x86_64] or [arm64] (got 'arm64')"),
        ("Architectures: [[a]]", "Architectures[0]", "must be x86_64 or arm64 (got a list)"),
        ("Layers: abc", "Layers", "must be a list (got 'abc')"),
        ("Layers: [{a: b}]", "Layers[0]", "must be a layer (!Ref a LayerVersion, or an ARN) (got a map)"),
        ("Layers: [Nope]", "Layers[0]", "'Nope' is not a layer in this template"),
        ("Events: [1]", "Events", "must be a map (got a list)"),
        ("Events: {E: 1}", "Events.E", "must be a map (got 1)"),
        ("Events: {E: {Type: [a]}}", "Events.E.Type", "must be an event type (Api, SQS, ...) (got a list)"),
        ("Events: {E: {Type: Api, Properties: {Path: 5, Method: get}}}", "Events.E.Properties.Path",
         "must be a text (got 5)"),
        ("Events: {E: {Type: Api, Properties: {Path: /a}}}", "Events.E.Properties.Method", "is required"),
        ("Events: {E: {Type: HttpApi, Properties: {PayloadFormatVersion: 3}}}",
         "Events.E.Properties.PayloadFormatVersion", "must be '1.0' or '2.0' (got 3)"),
        ("Events: {E: {Type: Api, Properties: {Path: /a, Method: get, RestApiId: F}}}",
         "Events.E.Properties.RestApiId", "'F' is not an AWS::Serverless::Api in this template"),
        ("SnapStart: [a]", "SnapStart", "must be a map (got a list)"),
        ("SnapStart: {ApplyOn: Always}", "SnapStart.ApplyOn",
         "must be one of None, PublishedVersions (got 'Always')"),
        ("EphemeralStorage: {Size: [1]}", "EphemeralStorage.Size",
         "must be an integer from 512 to 10240 (got a list)"),
        ("LoggingConfig: abc", "LoggingConfig", "must be a map (got 'abc')"),
        ("LoggingConfig: {LogFormat: JSON, ApplicationLogLevel: LOUD}", "LoggingConfig.ApplicationLogLevel",
         "'LOUD' is not a log level (TRACE, DEBUG, INFO, WARN, ERROR, FATAL)"),
        ("EventInvokeConfig: {MaximumRetryAttempts: 5}", "EventInvokeConfig.MaximumRetryAttempts",
         "5 is outside 0..2"),
        ("PackageType: [Zip]", "PackageType", "must be one of Zip, Image (got a list)"),
        ("AutoPublishAlias: [a]", "AutoPublishAlias", "must be a text (got a list)"),
        ("ProvisionedConcurrencyConfig: 5", "ProvisionedConcurrencyConfig", "must be a map (got 5)"),
        ("ProvisionedConcurrencyConfig: {}", "ProvisionedConcurrencyConfig.ProvisionedConcurrentExecutions",
         "is required"),
    ],
)  # fmt: skip
def test_every_property_checks_its_type(project, props, where, problem):
    e = error(project, function(f"      {props}\n"))
    assert (e.where, e.problem) == (f"Resources.F.Properties.{where}", problem)


@pytest.mark.parametrize(
    "text, where, problem",
    [
        (b"Resources:\n  F: \xff\n", "line 2", "is not UTF-8 text (byte 0xff)"),
        (b"\xff\xfeR\x00", "", "is UTF-16 text: save it as UTF-8"),
        (b"Resources:\n  F: a\x00\n", "line 2", "contains a NUL character: is it a text file?"),
        (b"Resources:\n  F: a\x07\n", "line 2", "character '\\x07' is not allowed in YAML"),
        (b"Resources: [\n", "line 2, column 1",
         "is not a valid template: expected the node content, but found '<stream end>'"),
        (b"Resources:\n  F: {Path: /items/{id}}\n", "line 2, column 20",
         "is not a valid template: expected ',' or '}', but got '{'"),
        (b"Resources:\n  F: !Reff X\n", "line 2, column 6", "!Reff is not a CloudFormation function"),
        (b"Resources:\n  F: 1\n  F: 2\n", "line 3, column 3", "'F' appears twice in this map (first on line 2)"),
        (b"Resources:\n  ? [a]\n  : 1\n", "line 2, column 5", "a map key must be text (got a sequence)"),
        (b"Resources:\n  F: !!binary aGk=\n", "line 2, column 6", "!!binary values have no place in a template"),
        (b"Resources:\n  F: !!python/object:os.system x\n", "line 2, column 6",
         "is not a valid template: could not determine a constructor for the tag "
         "'tag:yaml.org,2002:python/object:os.system'"),
        (b"Resources:\n  F: " + b"9" * 5000 + b"\n", "line 2, column 6",
         f"the number '{'9' * 55}...' has too many digits"),
        (b"", "", "is empty"),
        (b"- a\n", "", "must be a map of sections (Resources, Parameters, ...) (got a list)"),
        (b"Foo: 1\n", "", "has no Resources section"),
        (b'{"Resources": {"F": 1, "F": 2}}', "", "'F' appears twice in one JSON object"),
        (b'{"Resources": {"F": NaN}}', "", "NaN is not a JSON value"),
        (b'{"Resources": ', "line 1, column 15", "is not a valid template: Expecting value"),
    ],
)  # fmt: skip
def test_bad_text_and_syntax(project, text, where, problem):
    e = error(project, text)
    assert (e.where, e.problem) == (where, problem)


@pytest.mark.parametrize(
    "text",
    [
        "Resources: " + "[" * 100_000 + "]" * 100_000 + "\n",
        "Resources:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 500)),
        '{"Resources": ' + "[" * 100_000 + "]" * 100_000 + "}",
        '{"Resources": ' + "[" * 60 + "]" * 60 + "}",
    ],
    ids=["yaml-flow", "yaml-block", "json-100000", "json-60"],
)
def test_very_deep_nesting_is_refused(project, text):
    assert "nested more than 50 levels deep" in error(project, text).problem


BOMB = "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 10 if prev else ['lol'] * 10)}]\n"
    for prev, name in zip([None, *"abcdefgh"], "abcdefghi", strict=False)
)


def test_an_alias_bomb_is_refused_before_it_is_expanded(project):
    # 10**9 values once expanded; refused at once (time_limit fails the test if not).
    e = error(project, BOMB + FUNCTION + "      Environment: {Variables: {X: !Join ['', *i]}}\n")
    assert e.problem == "YAML aliases expand the template by more than 100,000 values"


def test_a_recursive_alias_is_refused(project):
    e = error(project, "a: &a [1, *a]\n" + FUNCTION)
    assert (e.where, e.problem) == (
        "line 1, column 4",
        "a YAML alias refers to a value that contains it",
    )


def test_aliases_that_nest_too_deep_are_refused(project):
    levels = "a0: &a0 [x]\n" + "".join(f"a{i}: &a{i} [[[[[*a{i - 1}]]]]]\n" for i in range(1, 12))
    assert error(project, levels + FUNCTION).problem == (
        "YAML aliases nest the template more than 50 levels deep"
    )


def test_modest_aliases_and_merge_keys_still_load(project):
    path = project / "template.yaml"
    path.write_text(
        "Shared: &shared {Handler: app.handler, Runtime: python3.12, CodeUri: src/}\n"
        "Resources:\n"
        "  A: {Type: AWS::Serverless::Function, Properties: *shared}\n"
        "  B:\n    Type: AWS::Serverless::Function\n    Properties:\n      <<: *shared\n"
        "      Timeout: 9\n"
    )
    t = load_template(path)
    assert (t.functions["A"].timeout, t.functions["B"].timeout) == (3, 9)


def test_keys_are_text_as_in_cloudformation(project):
    path = project / "template.yaml"
    path.write_text(
        FUNCTION.replace("  F:", "  Off:") + "      Environment: {Variables: {On: 1}}\n"
    )
    assert load_template(path).functions["Off"].environment == {"On": "1"}


# -- concurrency beyond the account ------------------------------------------------------------


def test_provisioned_concurrency_beyond_the_account_is_refused_at_load(project):
    e = error(project, FUNCTION + "      AutoPublishAlias: live\n"
              "      ProvisionedConcurrencyConfig: {ProvisionedConcurrentExecutions: 100000}\n")  # fmt: skip
    assert (e.where, e.problem) == (
        "Resources.F.Properties.ProvisionedConcurrencyConfig.ProvisionedConcurrentExecutions",
        "100000 is outside 1..1000, the account concurrency limit",
    )
    e = error(project, FUNCTION + "      ReservedConcurrentExecutions: 1001\n")
    assert e.problem == "1001 is outside 0..1000, the account concurrency limit"


def test_functions_together_beyond_the_account_are_refused_at_load(project):
    two = (
        FUNCTION
        + "      ReservedConcurrentExecutions: 600\n"
        + textwrap.indent(
            "G:\n  Type: AWS::Serverless::Function\n  Properties:\n    Handler: app.handler\n"
            "    Runtime: python3.12\n    CodeUri: src/\n    AutoPublishAlias: live\n"
            "    ProvisionedConcurrencyConfig: {ProvisionedConcurrentExecutions: 500}\n",
            "  ",
        )
    )
    e = error(project, two)
    assert (e.where, e.problem) == (
        "Resources.G.Properties.ProvisionedConcurrencyConfig.ProvisionedConcurrentExecutions",
        "500 with what the functions before it reserve or provision makes 1100, over the "
        "account concurrency limit (1000)",
    )
    path = project / "template.yaml"
    assert set(load_template(path, account_concurrency=1100).functions) == {"F", "G"}


def test_provisioned_concurrency_beyond_the_account_starts_nothing(make_runtime):
    rt = make_runtime(spec("Fn", "noop.handler", auto_publish_alias="live"), account_concurrency=4)
    with pytest.raises(
        InvalidParameterValueError,
        match=r"exceeds the account's unreserved concurrency \(4 of 4 left\)",
    ):
        rt.put_provisioned_concurrency("Fn", "live", 100000)
    with pytest.raises(InvalidParameterValueError, match="must be a whole number >= 0"):
        rt.put_provisioned_concurrency("Fn", "live", -1)
    assert rt.environments() == []
    rt.put_provisioned_concurrency("Fn", "live", 1)
    assert [e["init_type"] for e in rt.environments()] == ["provisioned-concurrency"]


# -- API routes API Gateway would refuse ---------------------------------------------------------


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    handler = Collect(logging.WARNING)
    logger = logging.getLogger("warmstart")
    logger.addHandler(handler)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)


def api(name: str, **events: tuple[str, str]) -> Any:
    return spec(name, "noop.handler", events={
        e: {"Type": "HttpApi", "Properties": {"Path": path, "Method": method}}
        for e, (method, path) in events.items()
    })  # fmt: skip


def test_routes_api_gateway_would_refuse_are_served_with_a_warning_each(warnings):
    table = routes(
        [
            api("A", Get=("GET", "/items/{id}"), Bare=("GET", "things"), Greedy=("ANY", "/{p+}/x")),
            api("B", Same=("GET", "/items/{name}"), Other=("POST", "/items/{id}")),
        ],
        {},
    )
    assert warnings == [
        "route GET things of A (Events.Bare): the path does not start with '/'; served as /things",
        "route ANY /{p+}/x of A (Events.Greedy): a greedy {name+} parameter must be the last "
        "segment (API Gateway refuses this path); served as written, the greedy part matching "
        "one or more segments",
        "route GET /items/{name} of B (Events.Same): the same route as A (Events.Get); that one "
        "is used",
    ]
    used = next(r for r in table if r.regex.match("/items/7") and r.method == "GET")
    assert used.function == "A"  # as the warning says
    assert next(r for r in table if r.path == "things").regex.match("/things")


# -- the command line: exit 2, one line ----------------------------------------------------------


@pytest.mark.parametrize(
    "text, line",
    [
        ("Conditions:\n  A: !Condition B\n  B: !Condition A\n" + FUNCTION,
         "Error: template.yaml: Conditions.A: the conditions refer to each other in a circle: "
         "A -> B -> A"),
        (function("      MemorySize: big\n"),
         "Error: template.yaml: Resources.F.Properties.MemorySize: must be an integer from 128 to "
         "10240 (got 'big')"),
        (BOMB + FUNCTION, "Error: template.yaml: YAML aliases expand the template by more than "
         "100,000 values"),
        (FUNCTION + '      Environment: {Variables: {"A\\nB[red]": x}}\n',
         "Error: template.yaml: Resources.F.Properties.Environment.Variables: 'A\\nB[red]' is not "
         "a valid name"),
    ],
)  # fmt: skip
def test_the_cli_says_one_line_and_exits_2(project, tmp_path, text, line):
    (tmp_path / "src").mkdir()
    (tmp_path / "template.yaml").write_text(text)
    p = subprocess.run(
        [sys.executable, "-m", "warmstart.cli", "invoke", "F"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "WARMSTART_PYTHON": sys.executable},
    )
    assert p.returncode == 2, p.stderr
    assert p.stderr.splitlines() == [line]
    assert p.stdout == ""


def test_a_valid_template_still_runs_from_the_cli(tmp_path):
    (tmp_path / "template.yaml").write_text(
        FUNCTION.replace("app.handler", "noop.handler").replace("src/", str(BASIC))
        .replace("python3.12", PY)
    )  # fmt: skip
    p = subprocess.run(
        [sys.executable, "-m", "warmstart.cli", "invoke", "F", "--isolation", "none"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "WARMSTART_PYTHON": sys.executable},
    )
    assert p.returncode == 0, p.stderr


def test_inline_code_is_kept_where_no_other_user_can_place_code(
    tmp_path, monkeypatch, make_runtime
):
    # A folder in the shared temporary folder, made first by someone else, is never used: the
    # code goes to this user's cache folder.
    planted = Path(tempfile.gettempdir()) / "warmstart-inline"
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    template = tmp_path / "template.yaml"
    template.write_text(
        "Resources:\n  Inline:\n    Type: AWS::Serverless::Function\n    Properties:\n"
        f"      Runtime: {PY}\n      Handler: index.handler\n"
        "      InlineCode: |\n        def handler(event, context):\n            return 'inline'\n"
    )
    spec = load_template(template).functions["Inline"]
    assert spec.code_dir.parent == cache / "warmstart" / "inline"
    assert (spec.code_dir / "index.py").stat().st_mode & 0o777 == 0o644
    assert not str(spec.code_dir).startswith(str(planted))
    assert load_template(template).functions["Inline"].code_dir == spec.code_dir  # reused
    assert make_runtime(spec).invoke("Inline", {}).payload == "inline"
