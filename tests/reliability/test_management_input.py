"""Management calls with bad bodies, sent raw to `warmstart serve` (boto3 would refuse to send
them): each is a 400 with AWS's error type and message shape, and nothing changes."""

from __future__ import annotations

import base64
import http.client
import io
import json
import sys
import zipfile

import pytest

from e2e.serve_helpers import descendants

PY = f"python{sys.version_info[0]}.{sys.version_info[1]}"
ROLE = "arn:aws:iam::123456789012:role/r"
INVALID = "InvalidParameterValueException"
CONTENT = "InvalidRequestContentException"
VALIDATION = "1 validation error detected: Value "


def call(server, method: str, path: str, body: object = None, raw: bytes | None = None):
    """(status, error type, parsed body) of one request, sent as boto3 would send it."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    data = raw if raw is not None else b"" if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", "Host": f"127.0.0.1:{server.port}"}
    try:
        conn.request(method, path, body=data, headers=headers)
        res = conn.getresponse()
        text = res.read()
        return res.status, res.getheader("x-amzn-errortype"), json.loads(text) if text else {}
    finally:
        conn.close()


def state(server) -> list[object]:
    """What a bad request must leave as it was: functions, versions, aliases, concurrency."""
    out: list[object] = []
    for path in (
        "/2015-03-31/functions?FunctionVersion=ALL",
        "/2015-03-31/functions/Echo/aliases",
        "/2017-10-31/functions/Echo/concurrency",
        "/2019-09-30/functions/Echo/provisioned-concurrency?Qualifier=live",
    ):
        out.append(call(server, "GET", path))
    code_root = server.state_dir / "functions"
    out.append(sorted(map(str, code_root.rglob("*"))) if code_root.exists() else [])
    return out


def _zip() -> str:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("index.py", "def handler(event, context):\n    return 1\n")
    return base64.b64encode(buf.getvalue()).decode()


def create(**changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "FunctionName": "Fresh",
        "Role": ROLE,
        "Runtime": PY,
        "Handler": "index.handler",
        "Code": {"ZipFile": _zip()},
    }
    for key, value in changes.items():
        if value is None:
            body.pop(key)
        else:
            body[key] = value
    return body


def deep(levels: int) -> bytes:
    return b'{"a": ' + b"[" * levels + b"]" * levels + b"}"


FUNCTIONS = "/2015-03-31/functions"
CONFIG = "/2015-03-31/functions/Echo/configuration"
CODE = "/2015-03-31/functions/Echo/code"
ALIASES = "/2015-03-31/functions/Echo/aliases"
CONCURRENCY = "/2017-10-31/functions/Echo/concurrency"
PROVISIONED = "/2019-09-30/functions/Echo/provisioned-concurrency?Qualifier=live"

CASES = [
    # CreateFunction: every field is checked before anything is unpacked
    ("POST", FUNCTIONS, create(Environment={"Variables": {"A1": 1}}), INVALID,
     "Value at 'environment.variables' failed to satisfy constraint: Map value must satisfy"),
    ("POST", FUNCTIONS, create(Environment={"Variables": {"1BAD": "x"}}), INVALID,
     "Map keys must satisfy constraint: [Member must satisfy regular expression pattern"),
    ("POST", FUNCTIONS, create(Environment={"Variables": {"a-b": "x"}}), INVALID, "Map keys"),
    ("POST", FUNCTIONS, create(Environment={"Variables": {"AWS_REGION": "x"}}), INVALID,
     "Reserved keys used in this request: AWS_REGION"),
    ("POST", FUNCTIONS, create(Environment={"Variables": {"BIG": "x" * 5000}}), INVALID,
     "exceeded the 4KB limit"),
    ("POST", FUNCTIONS, create(Runtime="python9"), INVALID,
     VALIDATION + "'python9' at 'runtime' failed to satisfy constraint: Member must satisfy enum"),
    ("POST", FUNCTIONS, create(Runtime=3.12), INVALID, "at 'runtime'"),
    ("POST", FUNCTIONS, create(Environment="x"), INVALID, "'x' at 'environment'"),
    ("POST", FUNCTIONS, create(Environment={"Variables": ["A"]}), INVALID,
     "at 'environment.variables'"),
    ("POST", FUNCTIONS, create(EphemeralStorage="1024"), INVALID, "at 'ephemeralStorage'"),
    ("POST", FUNCTIONS, create(EphemeralStorage={"Size": 100}), INVALID,
     VALIDATION + "'100' at 'ephemeralStorage.size' failed to satisfy constraint: Member must "
     "have value greater than or equal to 512"),
    ("POST", FUNCTIONS, create(EphemeralStorage={"Size": 20000}), INVALID,
     "less than or equal to 10240"),
    ("POST", FUNCTIONS, create(EphemeralStorage={}), INVALID,
     "Value null at 'ephemeralStorage.size' failed to satisfy constraint: Member must not be null"),
    ("POST", FUNCTIONS, create(LoggingConfig="JSON"), INVALID, "at 'loggingConfig'"),
    ("POST", FUNCTIONS, create(LoggingConfig={"LogFormat": "XML"}), INVALID,
     "at 'loggingConfig.logFormat'"),
    ("POST", FUNCTIONS, create(LoggingConfig={"ApplicationLogLevel": "INFO"}), INVALID,
     "only applies with LogFormat JSON"),
    ("POST", FUNCTIONS, create(Architectures="x86_64"), INVALID, "at 'architectures'"),
    ("POST", FUNCTIONS, create(Architectures=["sparc"]), INVALID,
     "Member must satisfy constraint: [Member must satisfy enum value set: [x86_64, arm64]]"),
    ("POST", FUNCTIONS, create(Architectures=["x86_64", "arm64"]), INVALID,
     "Member must have length less than or equal to 1"),
    ("POST", FUNCTIONS, create(MemorySize="256"), INVALID, "'256' at 'memorySize'"),
    ("POST", FUNCTIONS, create(MemorySize=64), INVALID, "greater than or equal to 128"),
    ("POST", FUNCTIONS, create(MemorySize=20000), INVALID, "less than or equal to 10240"),
    ("POST", FUNCTIONS, create(MemorySize=True), INVALID, "'true' at 'memorySize'"),
    ("POST", FUNCTIONS, create(MemorySize=256.5), INVALID, "at 'memorySize'"),
    ("POST", FUNCTIONS, create(Timeout=0), INVALID, "at 'timeout'"),
    ("POST", FUNCTIONS, create(Timeout=901), INVALID, "less than or equal to 900"),
    ("POST", FUNCTIONS, create(Handler="index handler"), INVALID, "at 'handler'"),
    ("POST", FUNCTIONS, create(Handler="h" * 129), INVALID, "less than or equal to 128"),
    ("POST", FUNCTIONS, create(Role=None), INVALID, "Value null at 'role'"),
    ("POST", FUNCTIONS, create(FunctionName="bad name"), INVALID, "at 'functionName'"),
    ("POST", FUNCTIONS, create(FunctionName=7), INVALID, "at 'functionName'"),
    ("POST", FUNCTIONS, create(Code="zip"), INVALID, "at 'code'"),
    ("POST", FUNCTIONS, create(Code={"ZipFile": 5}), INVALID,
     "Value at 'code.zipFile' failed to satisfy constraint"),
    ("POST", FUNCTIONS, create(Code={"ZipFile": "!!not base64"}), INVALID, "not base64"),
    ("POST", FUNCTIONS, create(Code={"S3Bucket": "bucket", "S3Key": "k"}), INVALID,
     "ZipFile is required"),
    ("POST", FUNCTIONS, create(Code={"ZipFile": None}), INVALID, "ZipFile is required"),
    ("POST", FUNCTIONS, create(Environment={"Variables": {"AB": None}}), INVALID,
     "Map value must satisfy constraint: [Member must be a string]"),
    ("POST", FUNCTIONS, create(Runtime=None), INVALID, "Runtime and Handler are mandatory"),
    ("POST", FUNCTIONS, create(PackageType="Image"), INVALID, "Only Zip packages"),
    ("POST", FUNCTIONS, create(Publish="yes"), INVALID, "at 'publish'"),
    ("POST", FUNCTIONS, create(MemorySize=1, Code={"ZipFile": "bm90IGEgemlw"}), INVALID,
     "at 'memorySize'"),  # the field is refused first: the zip is never looked at
    ("POST", FUNCTIONS, deep(10_000), CONTENT, "Document nesting depth (1001)"),
    ("POST", FUNCTIONS, b'{"FunctionName": NaN}', CONTENT, "Non-standard token 'NaN'"),
    ("POST", FUNCTIONS, b'{"FunctionName": "\xff"}', CONTENT, "Invalid UTF-8"),
    ("POST", FUNCTIONS, b"{FunctionName: x}", CONTENT, "Could not parse request body"),
    ("POST", FUNCTIONS, b"[]", CONTENT, "must be an object"),
    # UpdateFunctionConfiguration
    ("PUT", CONFIG, {"MemorySize": "1024"}, INVALID, "'1024' at 'memorySize'"),
    ("PUT", CONFIG, {"MemorySize": 99999}, INVALID, "less than or equal to 10240"),
    ("PUT", CONFIG, {"Timeout": -1}, INVALID, "at 'timeout'"),
    ("PUT", CONFIG, {"Environment": {"Variables": {"K": 1}}}, INVALID, "Map value"),
    ("PUT", CONFIG, {"Environment": {"Variables": {"AWS_LAMBDA_FUNCTION_NAME": "x"}}}, INVALID,
     "reserved keys"),
    ("PUT", CONFIG, {"Environment": {"Variables": {"XY": "y" * 5000}}}, INVALID, "4KB"),
    ("PUT", CONFIG, {"Environment": [1]}, INVALID, "at 'environment'"),
    ("PUT", CONFIG, {"Runtime": "python2"}, INVALID, "at 'runtime'"),
    ("PUT", CONFIG, {"EphemeralStorage": {"Size": "big"}}, INVALID, "ephemeralStorage.size"),
    ("PUT", CONFIG, {"LoggingConfig": ["JSON"]}, INVALID, "at 'loggingConfig'"),
    ("PUT", CONFIG, {"Handler": ""}, INVALID, "at 'handler'"),
    ("PUT", CONFIG, {"MemorySize": 512, "RevisionId": "stale"}, "PreconditionFailedException",
     "does not match the latest Revision Id"),
    ("PUT", CONFIG, deep(10_000), CONTENT, "nesting depth"),
    # UpdateFunctionCode
    ("PUT", CODE, {"ZipFile": 12}, INVALID, "at 'zipFile'"),
    ("PUT", CODE, {"ZipFile": _zip(), "Architectures": ["mips"]}, INVALID, "architectures"),
    ("PUT", CODE, {"ZipFile": _zip(), "Publish": "true"}, INVALID, "at 'publish'"),
    ("PUT", CODE, {"S3Bucket": "bucket", "S3Key": "k"}, INVALID, "ZipFile is required"),
    ("PUT", CODE, {"ZipFile": "%%%"}, INVALID, "not base64"),
    ("PUT", CODE, {"ZipFile": "bm90IGEgemlw"}, INVALID, "Could not unzip uploaded file"),
    ("PUT", CODE, {"ZipFile": _zip(), "RevisionId": "stale"}, "PreconditionFailedException",
     "Revision Id"),
    # CreateAlias, UpdateAlias
    ("POST", ALIASES, {"Name": "123", "FunctionVersion": "1"}, INVALID, "'123' at 'name'"),
    ("POST", ALIASES, {"Name": "bad name", "FunctionVersion": "1"}, INVALID, "at 'name'"),
    ("POST", ALIASES, {"Name": "", "FunctionVersion": "1"}, INVALID,
     "Member must have length greater than or equal to 1"),
    ("POST", ALIASES, {"Name": "a" * 129, "FunctionVersion": "1"}, INVALID, "at 'name'"),
    ("POST", ALIASES, {"Name": 5, "FunctionVersion": "1"}, INVALID, "at 'name'"),
    ("POST", ALIASES, {"Name": "ok", "FunctionVersion": "abc"}, INVALID,
     "'abc' at 'functionVersion'"),
    ("POST", ALIASES, {"Name": "ok"}, INVALID, "Value null at 'functionVersion'"),
    ("POST", ALIASES, {"Name": None, "FunctionVersion": "1"}, INVALID, "Value null at 'name'"),
    ("PUT", ALIASES + "/live", {"FunctionVersion": "latest"}, INVALID, "at 'functionVersion'"),
    ("PUT", ALIASES + "/live", {"FunctionVersion": 1}, INVALID, "at 'functionVersion'"),
    ("PUT", ALIASES + "/bad%20alias", {"FunctionVersion": "1"}, INVALID, "at 'name'"),
    # PutFunctionConcurrency
    ("PUT", CONCURRENCY, {"ReservedConcurrentExecutions": -1}, INVALID,
     VALIDATION + "'-1' at 'reservedConcurrentExecutions' failed to satisfy constraint: "
     "Member must have value greater than or equal to 0"),
    ("PUT", CONCURRENCY, {"ReservedConcurrentExecutions": "5"}, INVALID, "'5' at 'reserved"),
    ("PUT", CONCURRENCY, {"ReservedConcurrentExecutions": 1.5}, INVALID, "at 'reserved"),
    ("PUT", CONCURRENCY, {"ReservedConcurrentExecutions": True}, INVALID, "at 'reserved"),
    ("PUT", CONCURRENCY, {}, INVALID, "Value null at 'reservedConcurrentExecutions'"),
    ("PUT", CONCURRENCY, {"ReservedConcurrentExecutions": 2**40}, INVALID,
     "less than or equal to 2147483647"),
    ("PUT", CONCURRENCY, {"ReservedConcurrentExecutions": 950}, INVALID,
     "decreases account's UnreservedConcurrentExecution below its minimum value of [100]"),
    # PutProvisionedConcurrencyConfig
    ("PUT", PROVISIONED, {"ProvisionedConcurrentExecutions": 0}, INVALID, "at 'provisioned"),
    ("PUT", PROVISIONED, {"ProvisionedConcurrentExecutions": "2"}, INVALID, "at 'provisioned"),
    ("PUT", PROVISIONED.split("?")[0], {"ProvisionedConcurrentExecutions": 1}, INVALID,
     "Value null at 'qualifier'"),
    ("PUT", PROVISIONED, {"ProvisionedConcurrentExecutions": 100_000}, INVALID,
     "UnreservedConcurrentExecution below its minimum value"),
    ("PUT", PROVISIONED.replace("live", "bad!"), {"ProvisionedConcurrentExecutions": 1}, INVALID,
     "at 'qualifier'"),
    # the list calls, and a qualifier
    ("GET", FUNCTIONS + "?MaxItems=0", None, INVALID, "'0' at 'maxItems'"),
    ("GET", FUNCTIONS + "?MaxItems=abc", None, INVALID, "'abc' at 'maxItems'"),
    ("GET", FUNCTIONS + "?MaxItems=10001", None, INVALID, "less than or equal to 10000"),
    ("GET", FUNCTIONS + "?Marker=zz", None, INVALID, "'zz' at 'marker'"),
    ("GET", FUNCTIONS + "?MaxItems=" + "9" * 5000, None, INVALID, "at 'maxItems'"),
    ("GET", FUNCTIONS + "?Marker=" + "9" * 5000, None, INVALID, "at 'marker'"),
    ("GET", FUNCTIONS + "?FunctionVersion=SOME", None, INVALID, "enum value set: [ALL]"),
    ("GET", ALIASES + "?FunctionVersion=abc", None, INVALID, "at 'functionVersion'"),
    ("GET", "/2015-03-31/functions/Echo/versions?MaxItems=-3", None, INVALID, "at 'maxItems'"),
    ("GET", "/2015-03-31/functions/Echo?Qualifier=bad!", None, INVALID, "at 'qualifier'"),
]  # fmt: skip


@pytest.mark.parametrize("method, path, body, error, message", CASES)
def test_bad_input_is_a_400_and_changes_nothing(server, method, path, body, error, message):
    before = state(server)
    processes = len(descendants(server.proc.pid))
    raw = body if isinstance(body, bytes) else None
    status, error_type, doc = call(server, method, path, None if raw else body, raw)
    assert (status, error_type) == (412 if "Precondition" in error else 400, error), doc
    assert message in doc["message"], doc
    assert doc["Type"] == "User"
    assert state(server) == before
    assert len(descendants(server.proc.pid)) <= processes  # nothing started, either


def test_good_input_still_works(server):
    client = server.client()
    conf = client.update_function_configuration(
        FunctionName="Echo",
        MemorySize=512,
        Environment={"Variables": {"GREETING": "hi"}},
        LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "INFO"},
        EphemeralStorage={"Size": 1024},
    )
    assert conf["MemorySize"] == 512 and conf["EphemeralStorage"] == {"Size": 1024}
    res = json.loads(client.invoke(FunctionName="Echo", Payload=b"{}")["Payload"].read())
    assert res["env"]["GREETING"] == "hi"
    assert (
        client.put_function_concurrency(FunctionName="Echo", ReservedConcurrentExecutions=5)[
            "ReservedConcurrentExecutions"
        ]
        == 5
    )
    client.delete_function_concurrency(FunctionName="Echo")
    page = client.list_functions(MaxItems=1)
    assert len(page["Functions"]) == 1 and page["NextMarker"] == "1"
    rest = client.list_functions(Marker=page["NextMarker"], MaxItems=100)["Functions"]
    assert page["Functions"][0]["FunctionName"] not in [f["FunctionName"] for f in rest]
    client.create_alias(FunctionName="Echo", Name="v1-stable", FunctionVersion="1")
    assert client.get_alias(FunctionName="Echo", Name="v1-stable")["FunctionVersion"] == "1"
    created = client.create_function(**create(Code={"ZipFile": base64.b64decode(_zip())}))
    assert created["FunctionName"] == "Fresh"
    client.delete_function(FunctionName="Fresh")
