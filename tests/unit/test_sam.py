"""The template loader: short tags, intrinsics, Globals, validation, what is ignored."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from warmstart import TemplateError, load_template
from warmstart.sam import merge_globals, parse_parameter_overrides


def write(tmp_path: Path, body: str, name: str = "template.yaml") -> Path:
    (tmp_path / "src").mkdir(exist_ok=True)
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


FULL = """
    AWSTemplateFormatVersion: '2010-09-09'
    Transform: AWS::Serverless-2016-10-31
    Parameters:
      Stage:
        Type: String
        Default: dev
        AllowedValues: [dev, prod]
      Memory:
        Type: Number
        Default: 256
    Conditions:
      IsProd: !Equals [!Ref Stage, prod]
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
          Variables:
            STAGE: !Ref Stage
            SHARED: global
    Resources:
      Shared:
        Type: AWS::Serverless::LayerVersion
        Properties:
          ContentUri: layer/
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
              TABLE: !Ref Table
              TABLE_ARN: !GetAtt Table.Arn
              URL: !Sub "https://${AWS::Region}.example.com/${Stage}"
              JOINED: !Join ["-", [a, !Ref Stage]]
              MODE: !If [IsProd, fast, safe]
              ACCOUNT: !Sub "${AWS::AccountId}"
              SHARED: local
          Layers: [!Ref Shared]
          Role: arn:aws:iam::123456789012:role/x
          Policies: [AWSLambdaBasicExecutionRole]
          Tracing: Active
          AutoPublishAlias: live
          ProvisionedConcurrencyConfig:
            ProvisionedConcurrentExecutions: 2
          ReservedConcurrentExecutions: 5
          SnapStart:
            ApplyOn: PublishedVersions
          EphemeralStorage:
            Size: 1024
          LoggingConfig:
            LogFormat: JSON
            ApplicationLogLevel: DEBUG
            LogGroup: custom
          Events:
            Get:
              Type: Api
              Properties: {Path: /hello, Method: get}
      Named:
        Type: AWS::Serverless::Function
        Condition: IsProd
        Properties:
          Handler: app.handler
"""


def test_full_template(tmp_path):
    (tmp_path / "layer").mkdir()
    t = load_template(write(tmp_path, FULL))
    assert list(t.functions) == ["Hello"]  # Named's condition is false
    f = t.functions["Hello"]
    assert (f.handler, f.runtime, f.code_dir) == (
        "app.handler",
        "python3.12",
        (tmp_path / "src").resolve(),
    )
    assert (f.memory_size, f.timeout, f.architecture) == (256, 5, "arm64")
    assert f.environment == {
        "STAGE": "dev",
        "SHARED": "local",
        "TABLE": "Table",
        "TABLE_ARN": "Table.Arn",
        "URL": "https://us-east-1.example.com/dev",
        "JOINED": "a-dev",
        "MODE": "safe",
        "ACCOUNT": "123456789012",
    }
    # Globals lists come first, then the function's (SAM's rule).
    assert f.layers == ((tmp_path / "layer").resolve(),) * 2
    assert (f.auto_publish_alias, f.provisioned_concurrency, f.reserved_concurrency) == (
        "live",
        2,
        5,
    )
    assert f.snap_start and f.ephemeral_storage_mb == 1024
    assert (f.log_format, f.application_log_level) == ("JSON", "DEBUG")
    assert f.events["Get"]["Type"] == "Api"
    assert set(f.ignored) == {"Role", "Policies", "LoggingConfig.LogGroup"}
    assert any("Hello: ignored (not used locally): " in w for w in t.warnings)
    assert any("TABLE_ARN is Fn::GetAtt Table.Arn" in w for w in t.warnings)


def test_parameter_overrides(tmp_path):
    (tmp_path / "layer").mkdir()
    t = load_template(write(tmp_path, FULL), "Stage=prod Memory=1024")
    assert set(t.functions) == {"Hello", "Named"}
    assert t.functions["Hello"].memory_size == 1024
    assert t.functions["Hello"].timeout == 20
    assert t.functions["Hello"].environment["MODE"] == "fast"
    with pytest.raises(TemplateError, match="not one of"):
        load_template(write(tmp_path, FULL), {"Stage": "qa"})


def test_parse_parameter_overrides():
    assert parse_parameter_overrides("A=1 B='two words'") == {"A": "1", "B": "two words"}
    assert parse_parameter_overrides("ParameterKey=A,ParameterValue=x") == {"A": "x"}
    with pytest.raises(TemplateError):
        parse_parameter_overrides("nonsense")


def test_merge_globals():
    assert merge_globals(
        {"a": 1, "m": {"x": 1, "y": 1}, "l": [1]}, {"a": 2, "m": {"y": 2}, "l": [2]}
    ) == {"a": 2, "m": {"x": 1, "y": 2}, "l": [1, 2]}
    # An intrinsic is a value, not a map to merge.
    assert merge_globals({"m": {"Ref": "X"}}, {"m": {"k": 1}}) == {"m": {"k": 1}}


def test_json_template_and_plain_cloudformation(tmp_path):
    (tmp_path / "code").mkdir()
    body = {
        "Resources": {
            "Fn": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Handler": "index.handler",
                    "Runtime": "python3.11",
                    "Code": "code",
                    "FunctionName": "my-function",
                    "MemorySize": 512,
                },
            },
            "Inline": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Handler": "index.handler",
                    "Runtime": "python3.11",
                    "Code": {"ZipFile": "def handler(e, c):\n    return 42\n"},
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
    path = tmp_path / "template.json"
    path.write_text(json.dumps(body))
    t = load_template(path)
    assert set(t.functions) == {"my-function", "Inline"}
    fn = t.functions["my-function"]
    assert (fn.logical_id, fn.memory_size, fn.code_dir) == (
        "Fn",
        512,
        (tmp_path / "code").resolve(),
    )
    assert (fn.auto_publish_alias, fn.provisioned_concurrency) == ("live", 1)
    assert (t.functions["Inline"].code_dir / "index.py").read_text().startswith("def handler")


@pytest.mark.parametrize(
    "props, prop, problem",
    [
        ({"MemorySize": 64}, "MemorySize", "64 is outside 128..10240"),
        ({"MemorySize": 10241}, "MemorySize", "10241 is outside 128..10240"),
        ({"Timeout": 0}, "Timeout", "0 is outside 1..900"),
        ({"Timeout": 901}, "Timeout", "901 is outside 1..900"),
        ({"Timeout": "soon"}, "Timeout", "must be an integer from 1 to 900 (got 'soon')"),
        ({"CodeUri": "missing/"}, "CodeUri", "code folder 'missing/' does not exist"),
        ({"CodeUri": {"Bucket": "b", "Key": "k"}}, "CodeUri", "points to S3"),
        ({"Handler": "has space.handler"}, "Handler", "is not a handler"),
        (
            {"Environment": {"Variables": {"BIG": "x" * 5000}}},
            "Environment.Variables",
            "over Lambda's 4 KB limit",
        ),
        (
            {"Environment": {"Variables": {"AWS_REGION": "x"}}},
            "Environment.Variables",
            "AWS_REGION is reserved by Lambda",
        ),
        ({"EphemeralStorage": {"Size": 100}}, "EphemeralStorage.Size", "100 is outside 512..10240"),
        (
            {"ProvisionedConcurrencyConfig": {"ProvisionedConcurrentExecutions": 1}},
            "ProvisionedConcurrencyConfig",
            "needs AutoPublishAlias",
        ),
        (
            {"LoggingConfig": {"LogFormat": "XML"}},
            "LoggingConfig.LogFormat",
            "must be one of Text, JSON (got 'XML')",
        ),
        ({"Architectures": ["x86_64", "arm64"]}, "Architectures", "exactly one"),
        (
            {"ReservedConcurrentExecutions": -1},
            "ReservedConcurrentExecutions",
            "-1 is outside 0..1000, the account concurrency limit",
        ),
    ],
)
def test_invalid_definitions_name_the_resource_and_property(tmp_path, props, prop, problem):
    base = {"Handler": "app.handler", "Runtime": "python3.12", "CodeUri": "src/"}
    doc = {
        "Resources": {
            "Broken": {"Type": "AWS::Serverless::Function", "Properties": {**base, **props}}
        }
    }
    (tmp_path / "src").mkdir()
    path = tmp_path / "t.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(TemplateError) as e:
        load_template(path)
    assert e.value.where == f"Resources.Broken.Properties.{prop}"
    assert problem in e.value.problem
    assert str(e.value) == f"{path}: Resources.Broken.Properties.{prop}: {e.value.problem}"


@pytest.mark.parametrize(
    "body, message",
    [
        ("Resources: [", "is not a valid template"),
        ("Foo: 1\n", "has no Resources section"),
        ("Resources:\n  T:\n    Type: AWS::SQS::Queue\n", "defines no Lambda functions"),
        (
            "Parameters:\n  P: {Type: String}\nResources:\n  F:\n    Type: AWS::Serverless::Function\n"
            "    Properties: {Handler: a.b, Runtime: python3.12, CodeUri: src/, Timeout: !Ref P}\n",
            "parameter P has no Default",
        ),
        (
            "Globals:\n  Function:\n    Role: x\nResources:\n  F:\n    Type: AWS::Serverless::Function\n",
            "'Role' is not a supported property of 'Function'",
        ),
    ],
)
def test_broken_templates(tmp_path, body, message):
    with pytest.raises(TemplateError, match=message):
        load_template(write(tmp_path, body))


def test_missing_template_file(tmp_path):
    with pytest.raises(TemplateError, match=r"nope\.yaml: cannot read it: No such file"):
        load_template(tmp_path / "nope.yaml")


def test_every_short_tag_parses(tmp_path):
    body = """
        Conditions:
          Always: !Equals [a, a]
          Never: !Not [!Condition Always]
          Both: !And [!Condition Always, !Condition Always]
          Either: !Or [!Condition Never, !Condition Always]
        Resources:
          F:
            Type: AWS::Serverless::Function
            Properties:
              Handler: app.handler
              Runtime: python3.12
              CodeUri: src/
              Environment:
                Variables:
                  A: !Select [1, !Split [",", "x,y,z"]]
                  B: !Base64 hi
                  C: !ImportValue other-stack-output
                  D: !If [Either, "yes", "no"]
                  E: !Join [",", !GetAZs ""]
                  F: !Sub ["${X}-${!Literal}", {X: !Ref AWS::Partition}]
                  G: !Cidr [10.0.0.0/16, 2, 8]
    """
    env = load_template(write(tmp_path, body)).functions["F"].environment
    assert env["A"] == "y" and env["B"] == "aGk=" and env["D"] == "yes"
    assert env["E"] == "us-east-1a,us-east-1b,us-east-1c"
    assert env["F"] == "aws-${Literal}"
    assert env["C"] == "<Fn::ImportValue>"


def test_a_sam_build_runs_when_it_is_newer_than_the_sources(tmp_path):
    path = write(
        tmp_path,
        """
        Resources:
          F:
            Type: AWS::Serverless::Function
            Properties: {Handler: app.handler, Runtime: python3.12, CodeUri: src/}
    """,
    )
    (tmp_path / "src" / "app.py").write_text("def handler(e, c):\n    return 1\n")
    (tmp_path / "src" / "requirements.txt").write_text("PyYAML==6.0\n")
    t = load_template(path)
    assert t.functions["F"].code_dir == (tmp_path / "src").resolve()
    assert t.functions["F"].uninstalled == ("pyyaml",)  # the sources, unbuilt
    built = tmp_path / ".aws-sam" / "build" / "F"
    built.mkdir(parents=True)  # made after the sources: newer
    t = load_template(path)
    assert t.functions["F"].code_dir == built.resolve() and t.functions["F"].uninstalled == ()
    assert any("running the sam build in" in n for n in t.notes)
    os.utime(tmp_path / "src" / "app.py", ns=(built.stat().st_mtime_ns + 10**9,) * 2)  # an edit
    t = load_template(path)
    assert t.functions["F"].code_dir == (tmp_path / "src").resolve()
    assert any("is older than its sources" in w for w in t.warnings)
    t = load_template(path, build_dir=tmp_path / ".aws-sam" / "build")  # as given, however old
    assert t.functions["F"].code_dir == built.resolve()
    t = load_template(path, use_builds=False)
    assert t.functions["F"].code_dir == (tmp_path / "src").resolve()


def test_tracing_from_globals_and_cloudformation(tmp_path):
    path = write(
        tmp_path,
        """
        Globals:
          Function:
            Tracing: Active
        Resources:
          Sam:
            Type: AWS::Serverless::Function
            Properties: {Handler: a.b, Runtime: python3.12, CodeUri: src/}
          Plain:
            Type: AWS::Serverless::Function
            Properties: {Handler: a.b, Runtime: python3.12, CodeUri: src/, Tracing: PassThrough}
          Cfn:
            Type: AWS::Lambda::Function
            Properties:
              Handler: a.b
              Runtime: python3.12
              Code: src/
              TracingConfig: {Mode: Active}
        """,
    )
    functions = load_template(path).functions
    assert {n: f.tracing for n, f in functions.items()} == {
        "Sam": "Active", "Plain": "PassThrough", "Cfn": "Active",
    }  # fmt: skip


def test_event_sources_not_run_locally_are_said(tmp_path):
    path = write(
        tmp_path,
        """
        Resources:
          Worker:
            Type: AWS::Serverless::Function
            Properties:
              Handler: a.b
              Runtime: python3.12
              CodeUri: src/
              Events:
                Jobs: {Type: SQS, Properties: {Queue: arn:aws:sqs:us-east-1:123456789012:jobs}}
                Nightly: {Type: Schedule, Properties: {Schedule: rate(1 day)}}
        """,
    )
    t = load_template(path)
    assert any(
        "Worker: ignored (not used locally): Events.Jobs (a SQS event source is not run "
        "locally), Events.Nightly (a Schedule event source" in w
        for w in t.warnings
    ), t.warnings
