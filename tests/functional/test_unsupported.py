"""A function warmstart cannot run (a container image, a runtime it does not have yet) does not
sink its template: the others run, and invoking it says why."""

from __future__ import annotations

import sys

import pytest

from conftest import APPS
from warmstart import Config, Runtime
from warmstart.errors import UnsupportedRuntimeError

TEMPLATE = f"""\
Resources:
  Hello:
    Type: AWS::Serverless::Function
    Properties:
      Handler: noop.handler
      Runtime: python3.11
      CodeUri: {APPS / "basic"}
  Container:
    Type: AWS::Serverless::Function
    Properties:
      PackageType: Image
      ImageUri: 123456789012.dkr.ecr.us-east-1.amazonaws.com/app:latest
      MemorySize: 512
    Metadata:
      Dockerfile: Dockerfile
  Node:
    Type: AWS::Serverless::Function
    Properties:
      Handler: index.handler
      Runtime: nodejs20.x
      CodeUri: {APPS / "basic"}
"""


@pytest.fixture
def rt(tmp_path, state_dir):
    (tmp_path / "template.yaml").write_text(TEMPLATE)
    config = Config.resolve(state_dir=state_dir, python=sys.executable)
    with Runtime.from_template(tmp_path / "template.yaml", config=config) as rt:
        yield rt


def test_the_others_run_and_it_says_why(rt):
    assert rt.functions == ["Hello", "Container", "Node"]
    assert rt.invoke("Hello", {}).payload == {"hello": "world"}
    with pytest.raises(UnsupportedRuntimeError, match="Container: PackageType Image"):
        rt.invoke("Container", {})
    with pytest.raises(UnsupportedRuntimeError, match=r"runtime nodejs20\.x is not supported"):
        rt.invoke("Node", {})
    said = " ".join(rt.warnings)
    assert "Container: PackageType Image" in said and "it cannot be invoked" in said
    assert rt.function("Container").memory_size == 512
