"""`warmstart load` as users run it: against a function in-process, and against `serve`."""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import APPS
from e2e.serve_helpers import Server
from e2e.test_cli import run

LOAD = APPS.parent / "load"


@pytest.fixture
def project(tmp_path):
    shutil.copytree(APPS / "basic", tmp_path / "basic")
    shutil.copy(APPS / "template.yaml", tmp_path / "template.yaml")
    shutil.copy(LOAD / "lambda.yml", tmp_path / "load.yml")
    return tmp_path


def test_load_a_function(project):
    p = run("load", "-c", "load.yml", "--json", "out.json", "--report", "r.html", cwd=project)
    assert p.returncode == 0, p.stderr
    doc = json.loads((project / "out.json").read_text())
    assert doc["requests"] == 50 and doc["errors"] == 0 and doc["cold_starts"] >= 1
    assert [ph["name"] for ph in doc["phases"]] == ["steady", "ramp"]
    assert {"p50", "p95", "p99", "max"} <= set(doc["latency_ms"])
    assert " 0s " in p.stderr and "envs " in p.stderr  # the live line
    assert "highest rate before errors" in p.stdout and "steady" in p.stdout
    page = (project / "r.html").read_text()
    assert page.count("<svg") == 2 and "Latency histogram" in page


def test_errors_fail_the_run_when_asked(project):
    p = run("load", "Raiser", "-c", "load.yml", "--json", "-", "--fail-on-errors", cwd=project)
    assert p.returncode == 1, p.stderr
    doc = json.loads(p.stdout)
    assert doc["errors_by_type"] == {"OrderError": 50}


def test_user_mistakes_are_one_line(project):
    (project / "bad.yml").write_text(
        "config:\n  target: Echo\n  phases: [{duration: 1, arrivalRate: 2, burst: 3}]\n"
        "scenarios: [{engine: lambda, flow: [{invoke: {payload: '{}'}}]}]\n"
    )
    p = run("load", "-c", "bad.yml", "--quiet", cwd=project)
    assert p.returncode == 0, p.stderr
    assert "config.phases[0].burst is not understood; ignored" in p.stderr
    p = run("load", "Nope", "-c", "load.yml", cwd=project)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert "Function not found" in p.stderr and "the template has: Echo" in p.stderr
    (project / "http.yml").write_text(
        "config:\n  target: nowhere\n  phases: [{duration: 1, arrivalRate: 1}]\n"
        "scenarios: [{flow: [{get: {url: /}}]}]\n"
    )
    p = run("load", "-c", "http.yml", cwd=project)
    assert p.returncode == 2 and "need an http:// URL" in p.stderr


def test_load_against_serve(tmp_path):
    srv = Server(tmp_path / "serve").start()
    try:
        (tmp_path / "api.yml").write_text(
            """config:
  target: "http://127.0.0.1:1"
  phases: [{duration: 2, arrivalRate: 10, name: api}]
scenarios:
  - flow:
      - get:
          url: "/v2/items/{{ $randomNumber(1, 100) }}"
      - post:
          url: "/v1/items/{{ $randomNumber(1, 9) }}"
          json: {name: "{{ $randomString() }}"}
      - get:
          url: "/nowhere"
"""
        )
        p = run("load", srv.api_url, "-c", "api.yml", "--json", "-", cwd=tmp_path)
        assert p.returncode == 0, p.stderr
        doc = json.loads(p.stdout)
        assert doc["arrivals"] == 20 and doc["requests"] == 60
        assert doc["errors_by_type"] == {"HTTP 404": 20}  # the route that does not exist
        assert doc["phases"][0]["achieved_rps"] == pytest.approx(10, abs=0.5)
    finally:
        code, out = srv.stop()
    assert code == 0, out
