"""The Lambda API as boto3 and the AWS CLI speak it (botocore's `lambda` model, 2015-03-31).

Invoke (RequestResponse, Event, DryRun; LogType Tail; client context), the management calls
tools need, and errors shaped as AWS shapes them, so botocore raises its modeled exceptions.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import re
import shutil
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote

from ..api import Runtime
from ..engine import payload
from ..engine.events import ASYNC_PAYLOAD_LIMIT
from ..engine.service import LATEST, SYNC_PAYLOAD_LIMIT, Function, Version, new_request_id
from ..errors import (
    InvalidParameterValueError,
    InvalidRequestContentError,
    RequestTooLargeError,
    ResourceConflictError,
    ResourceNotFoundError,
    SpecError,
    TooManyRequestsError,
    UnsupportedRuntimeError,
)
from ..observe.metrics import Metrics
from ..spec import FunctionSpec, validate
from .asgi import (
    CLOSE,
    BodyTooLarge,
    Disconnected,
    Receive,
    Request,
    Router,
    Scope,
    Send,
    has_body,
    read_body,
    send,
    text_headers,
)
from .guard import Guard, Refusal, is_json, noted
from .sigv4 import SignatureError, Verifier
from .unzip import UNZIPPED_LIMIT, unpack
from .validation import check_environment, check_input, preload

__all__ = ["MANAGEMENT_BODY_LIMIT", "ApiError", "LambdaApi"]

log = logging.getLogger("warmstart")

# Matched on the raw path, as it came: both front doors (ASGI and `serve`'s protocol) unquote
# the name the same way.
INVOKE_PATH = re.compile(rb"^/2015-03-31/functions/([^/]+)/invocations/?$")
# FunctionName as the API accepts it: a name, a partial ARN or an ARN, with a qualifier.
FUNCTION_NAME = re.compile(
    r"^(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?"
    r"([a-zA-Z0-9-_.]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?$"
)
TAIL_BYTES = 4096
# The largest management call: CreateFunction's 50 MB zip, base64 in a JSON body.
MANAGEMENT_BODY_LIMIT = 70 * 1024 * 1024
UNRESERVED_MINIMUM = 100  # concurrency Lambda keeps for functions without a reservation
JSON = (b"content-type", b"application/json")
Response = tuple[int, bytes, list[tuple[bytes, bytes]]]


def invoke_limit(headers: list[tuple[bytes, bytes]]) -> int:
    """The largest Invoke body the request's invocation type allows."""
    for k, v in headers:
        if k == b"x-amz-invocation-type":
            return ASYNC_PAYLOAD_LIMIT if v == b"Event" else SYNC_PAYLOAD_LIMIT
    return SYNC_PAYLOAD_LIMIT


class ApiError(Exception):
    """An error as the Lambda API answers it: HTTP status, error code, message."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra

    def response(self, request_id: str) -> Response:
        # botocore takes the code from x-amzn-ErrorType and the message from the body;
        # ResourceNotFoundException and ServiceException spell it "Message".
        key = (
            "Message"
            if self.code in ("ResourceNotFoundException", "ServiceException")
            else "message"
        )
        body = {"Type": "Server" if self.status >= 500 else "User", key: self.message, **self.extra}
        headers = [
            JSON,
            (b"x-amzn-errortype", self.code.encode()),
            (b"x-amzn-requestid", request_id.encode()),
        ]
        if self.code == "TooManyRequestsException":
            headers.append((b"retry-after", b"1"))
        return self.status, json.dumps(body).encode(), headers


def api_error(e: Exception) -> ApiError:
    """The API error for one of warmstart's errors."""
    if isinstance(e, ApiError):
        return e
    if isinstance(e, ResourceNotFoundError):
        return ApiError(404, "ResourceNotFoundException", str(e))
    if isinstance(e, TooManyRequestsError):
        return ApiError(429, "TooManyRequestsException", str(e), Reason=e.reason)
    if isinstance(e, RequestTooLargeError):
        return ApiError(413, "RequestTooLargeException", str(e))
    if isinstance(e, InvalidRequestContentError):
        return ApiError(400, "InvalidRequestContentException", str(e))
    if isinstance(e, ResourceConflictError):
        return ApiError(409, "ResourceConflictException", str(e))
    if isinstance(e, (SpecError, InvalidParameterValueError)):
        return ApiError(400, "InvalidParameterValueException", str(e))
    if isinstance(e, UnsupportedRuntimeError):
        return ApiError(502, "InvalidRuntimeException", str(e))
    log.error("Lambda API: %s", e)
    return ApiError(500, "ServiceException", f"{type(e).__name__}: {e}")


def _iso(epoch: float) -> str:
    """LastModified as the Lambda API writes it: 2024-01-31T12:34:56.789+0000."""
    ms = int(epoch * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{ms:03d}+0000"


class LambdaApi:
    """The ASGI application of `warmstart serve --port`.

    Example: uvicorn.run(LambdaApi(Runtime.from_template("template.yaml")), port=3001)
    """

    def __init__(
        self,
        runtime: Runtime,
        verifier: Verifier | None = None,
        metrics: Metrics | None = None,
        code_root: Path | None = None,
        guard: Guard | None = None,
    ) -> None:
        self.runtime = runtime
        self.service = runtime.service
        self.verifier = verifier
        self.guard = guard or Guard()
        self.metrics = metrics
        self.code_root = code_root or runtime.config.state_dir / "functions"
        self._created: set[str] = set()  # functions with code folders this API unpacked
        self._discarding: set[tuple[str, Path]] = set()  # code folders to remove (_discard_later)
        self._code_info: dict[Path, tuple[int, str]] = {}
        threading.Thread(target=preload, name="lambda-model", daemon=True).start()
        self.router = Router()
        r = self.router.add
        r("GET", "/2015-03-31/functions", self.list_functions)
        r("POST", "/2015-03-31/functions", self.create_function)
        r("GET", "/2015-03-31/functions/{name}", self.get_function)
        r("DELETE", "/2015-03-31/functions/{name}", self.delete_function)
        r("GET", "/2015-03-31/functions/{name}/configuration", self.get_configuration)
        r("PUT", "/2015-03-31/functions/{name}/configuration", self.update_configuration)
        r("PUT", "/2015-03-31/functions/{name}/code", self.update_code)
        r("POST", "/2015-03-31/functions/{name}/versions", self.publish_version)
        r("GET", "/2015-03-31/functions/{name}/versions", self.list_versions)
        r("POST", "/2015-03-31/functions/{name}/aliases", self.create_alias)
        r("GET", "/2015-03-31/functions/{name}/aliases", self.list_aliases)
        r("GET", "/2015-03-31/functions/{name}/aliases/{alias}", self.get_alias)
        r("PUT", "/2015-03-31/functions/{name}/aliases/{alias}", self.update_alias)
        r("PUT", "/2017-10-31/functions/{name}/concurrency", self.put_concurrency)
        r("DELETE", "/2017-10-31/functions/{name}/concurrency", self.delete_concurrency)
        r("GET", "/2019-09-30/functions/{name}/concurrency", self.get_concurrency)
        r("PUT", "/2019-09-30/functions/{name}/provisioned-concurrency", self.put_provisioned)
        r("GET", "/2019-09-30/functions/{name}/provisioned-concurrency", self.get_provisioned)
        r("GET", "/2016-08-19/account-settings", self.account_settings)
        r("POST", "/2014-11-13/functions/{name}/invoke-async", self.invoke_async_legacy)
        r("GET", "/metrics", self.get_metrics)

    # -- ASGI ------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send_: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send_)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        method: str = scope["method"]
        raw_path = _raw_path(scope)
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        host, hosts, origin, site = noted(headers)
        verdict = self.guard.check(host, hosts, origin, site, scope.get("http_version") == "1.0")
        cors: list[tuple[bytes, bytes]] = []
        if isinstance(verdict, Refusal):
            refused = ApiError(verdict.status, verdict.code, verdict.message)
            status, data, out = refused.response(new_request_id())
            await send(send_, status, data, [*out, CLOSE])
            return
        if verdict is not None and origin is not None:
            if method == "OPTIONS":  # the preflight of an origin the user allowed
                asked = dict(headers)
                private = asked.get(b"access-control-request-private-network") == b"true"
                preflight = Guard.preflight(
                    origin, asked.get(b"access-control-request-headers"), private
                )
                await send(send_, 204, b"", preflight)
                return
            cors = verdict
        whole = False  # the request's body is all in: the connection may serve another

        async def receive_body() -> dict[str, Any]:
            nonlocal whole
            message = await receive()
            whole = not message.get("more_body")
            return message

        try:
            m = INVOKE_PATH.match(raw_path) if method == "POST" else None
            if m is not None:
                self._authorize(
                    method, raw_path, scope["query_string"], text_headers(headers), None
                )
                try:
                    body: bytes | None = await read_body(receive_body, invoke_limit(headers))
                except BodyTooLarge:
                    body = None
                answer = await self.answer_invoke(
                    m.group(1).decode("latin-1"), raw_path, scope["query_string"], headers, body
                )
            else:
                answer = await self.route(scope, receive_body, method, path)
        except Disconnected:
            return  # nobody to answer
        except Exception as e:  # every error gets AWS's shape, never a traceback
            answer = api_error(e).response(new_request_id())
        status, data, out = answer
        if not whole and has_body(headers):  # refused unread: not a byte more is read
            out = [*out, CLOSE]
        await send(send_, status, data, [*out, *cors])

    async def route(self, scope: Scope, receive: Receive, method: str, path: str) -> Response:
        raw_path, query = _raw_path(scope), scope["query_string"]
        headers = text_headers(scope["headers"])
        # With credentials, nothing is read, named or measured for a client before it has
        # shown what it can of its signature (the rest needs the body).
        self._authorize(method, raw_path, query, headers, None)
        handler, params, exists = self.router.match(method, path)
        unknown = None
        if handler is None:
            unknown = (
                ApiError(405, "MethodNotAllowedException", f"{method} is not allowed here")
                if exists
                else ApiError(404, "UnknownOperationException", f"No operation at {method} {path}")
            )
            if self.verifier is None:
                raise unknown
        if (
            handler is not None
            and handler != self.invoke_async_legacy  # botocore sends its payload untyped
            and has_body(scope["headers"])
            and not is_json(headers.get("content-type"))
        ):
            raise ApiError(
                415,
                "UnsupportedMediaTypeException",
                f"The request body must be JSON (Content-Type: application/json), not "
                f"{headers.get('content-type') or 'untyped'}",
            )
        try:
            body = await read_body(receive, MANAGEMENT_BODY_LIMIT)
        except BodyTooLarge:
            raise ApiError(
                413,
                "RequestTooLargeException",
                f"Request must be smaller than {MANAGEMENT_BODY_LIMIT} bytes",
            ) from None
        self._authorize(method, raw_path, query, headers, body)
        if unknown is not None:
            raise unknown
        assert handler is not None
        request = Request(scope, {k: unquote(v) for k, v in params.items()}, body)
        if "name" in params:
            _check_name(request.params["name"])
        return await handler(request)

    def _authorize(
        self,
        method: str,
        raw_path: bytes,
        query: bytes,
        headers: dict[str, str],
        body: bytes | None,
    ) -> None:
        """With credentials, the request's signature; `body` None: what can be checked of it
        before the body is read."""
        if self.verifier is None:
            return
        try:
            self.verifier.check(
                method, raw_path.decode("latin-1"), query.decode("latin-1"), headers, body
            )
        except SignatureError as e:
            raise ApiError(403, e.code, e.message) from None

    # -- Invoke ----------------------------------------------------------------------------

    async def answer_invoke(
        self,
        raw_name: str,
        raw_path: bytes,
        query: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes | None,
    ) -> Response:
        """Invoke's answer to a request whose body is read (None: it was over the limit).

        Never raises: errors get AWS's shape. The ASGI application and `serve`'s HTTP protocol,
        which answers Invoke without ASGI, both come here.
        """
        try:
            if self.verifier is not None:  # before anything is named or measured
                self._authorize("POST", raw_path, query, text_headers(headers), body)
            invocation_type = b"RequestResponse"
            tail = False
            client_context = b""
            for k, v in headers:
                if k == b"x-amz-invocation-type":
                    invocation_type = v
                elif k == b"x-amz-log-type":
                    tail = v == b"Tail"
                elif k == b"x-amz-client-context":
                    client_context = v
            name = unquote(raw_name)
            _check_name(name)
            qualifier = None
            if query:
                qualifier = dict(parse_qsl(query.decode("latin-1"))).get("Qualifier")
            if body is None:
                kind = (
                    "Invoke operation when the invocation type is Event"
                    if invocation_type == b"Event"
                    else "InvokeFunction operation"
                )
                raise ApiError(
                    413,
                    "RequestTooLargeException",
                    f"Request must be smaller than {invoke_limit(headers)} bytes for the {kind}",
                )
            body = body or b"{}"  # its JSON is checked once, by the engine (encode_event)
            cc = None
            if client_context:
                try:
                    cc = base64.b64decode(client_context, validate=True)
                    json.loads(cc)
                except ValueError:
                    raise ApiError(
                        400,
                        "InvalidRequestContentException",
                        "Client context must be a valid Base64-encoded JSON object.",
                    ) from None
            if invocation_type == b"Event":
                rid = self.service.invoke_async(name, body, qualifier, client_context=cc)
                return 202, b"", [(b"x-amzn-requestid", rid.encode())]
            if invocation_type == b"DryRun":
                payload.parse(body)
                self.service.resolve(name, qualifier)
                return 204, b"", [(b"x-amzn-requestid", new_request_id().encode())]
            if invocation_type != b"RequestResponse":
                raise ApiError(
                    400,
                    "InvalidParameterValueException",
                    f"Unsupported invocation type {invocation_type.decode()!r}",
                )
            res = await self.service.ainvoke(name, body, qualifier, client_context=cc)
            headers = [
                JSON,
                (b"x-amzn-requestid", res.request_id.encode()),
                (b"x-amz-executed-version", res.version.encode()),
            ]
            if res.function_error:
                headers.append((b"x-amz-function-error", b"Unhandled"))
            if tail:
                log_bytes = res.log.encode("utf-8", "replace")[-TAIL_BYTES:]
                headers.append((b"x-amz-log-result", base64.b64encode(log_bytes)))
            return 200, res.raw, headers
        except Exception as e:
            return api_error(e).response(new_request_id())

    async def invoke_async_legacy(self, request: Request) -> Response:
        rid = self.service.invoke_async(request.params["name"], request.body or b"{}")
        return 202, b'{"Status": 202}', [JSON, (b"x-amzn-requestid", rid.encode())]

    # -- documents -------------------------------------------------------------------------

    def _code(self, spec: FunctionSpec) -> tuple[int, str]:
        """CodeSize and CodeSha256 of a code folder (sizes and names of its files, cached)."""
        folder = spec.code_dir
        if spec.unsupported:  # not code of its own (the template's folder)
            return 0, ""
        if folder not in self._code_info:
            size = 0
            digest = hashlib.sha256()
            for path in sorted(folder.rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts:
                    st = path.stat()
                    size += st.st_size
                    digest.update(
                        f"{path.relative_to(folder)}:{st.st_size}:{st.st_mtime_ns}".encode()
                    )
            self._code_info[folder] = (size, base64.b64encode(digest.digest()).decode())
        return self._code_info[folder]

    def configuration(self, version: Version) -> dict[str, Any]:
        """FunctionConfiguration of a version."""
        spec = version.spec
        svc = self.service
        name = version.function.name
        size, sha = self._code(spec)
        region, account = svc.config.region, svc.config.account_id
        doc: dict[str, Any] = {
            "FunctionName": name,
            "FunctionArn": svc._arn(name, None if version.name == LATEST else version.name),
            "Runtime": spec.runtime,
            "Role": f"arn:aws:iam::{account}:role/warmstart",
            "Handler": spec.handler,
            "CodeSize": size,
            "Description": "",
            "Timeout": spec.timeout,
            "MemorySize": spec.memory_size,
            "LastModified": _iso(version.modified),
            "CodeSha256": sha,
            "Version": version.name,
            "Environment": {"Variables": dict(spec.environment)},
            "TracingConfig": {"Mode": spec.tracing},
            "RevisionId": version.revision,
            "Layers": [
                {"Arn": f"arn:aws:lambda:{region}:{account}:layer:{layer.name}:1"}
                for layer in spec.layers
            ],
            "State": "Active",
            "LastUpdateStatus": "Successful",
            "PackageType": "Zip",
            "Architectures": [spec.architecture],
            "EphemeralStorage": {"Size": spec.ephemeral_storage_mb},
            "SnapStart": {
                "ApplyOn": "PublishedVersions" if spec.snap_start else "None",
                "OptimizationStatus": "On" if spec.snap_start and version.name != LATEST else "Off",
            },
            "LoggingConfig": {"LogFormat": spec.log_format, "LogGroup": f"/aws/lambda/{name}"},
        }
        if spec.application_log_level:
            doc["LoggingConfig"]["ApplicationLogLevel"] = spec.application_log_level
        if spec.is_python:
            doc["RuntimeVersionConfig"] = {
                "RuntimeVersionArn": svc.adapter.runtime_version(spec.runtime)[1]
            }
        return doc

    def _alias(self, fn: Function, alias: str) -> dict[str, Any]:
        return {
            "AliasArn": self.service._arn(fn.name, alias),
            "Name": alias,
            "FunctionVersion": fn.aliases[alias],
            "Description": "",
            "RevisionId": hashlib.md5(
                f"{fn.name}:{alias}:{fn.aliases[alias]}".encode()
            ).hexdigest(),
        }

    # -- management ------------------------------------------------------------------------

    def _input(self, operation: str, request: Request) -> dict[str, Any]:
        """The operation's input from the request, checked against botocore's model."""
        uri = {"FunctionName": request.params["name"]} if "name" in request.params else {}
        if "alias" in request.params:
            uri["Name"] = request.params["alias"]
        return check_input(operation, _json(request), uri, request.query)

    def _version(self, name: str, qualifier: str | None) -> Version:
        return self.service.resolve(name, qualifier)[0]

    async def list_functions(self, request: Request) -> Response:
        given = self._input("ListFunctions", request)
        fns = sorted(self.service.functions.values(), key=lambda f: f.name)
        versions: list[Version] = []
        for fn in fns:
            versions.append(fn.latest)
            if given.get("FunctionVersion") == "ALL":
                versions += fn.versions.values()
        return _page(given, "Functions", [self.configuration(v) for v in versions])

    async def get_function(self, request: Request) -> Response:
        given = self._input("GetFunction", request)
        version = self._version(given["FunctionName"], given.get("Qualifier"))
        doc: dict[str, Any] = {
            "Configuration": self.configuration(version),
            "Code": {"RepositoryType": "S3", "Location": version.spec.code_dir.as_uri()},
        }
        if version.function.reserved is not None:
            doc["Concurrency"] = {"ReservedConcurrentExecutions": version.function.reserved}
        return _ok(doc)

    async def get_configuration(self, request: Request) -> Response:
        given = self._input("GetFunctionConfiguration", request)
        return _ok(self.configuration(self._version(given["FunctionName"], given.get("Qualifier"))))

    async def update_configuration(self, request: Request) -> Response:
        given = self._input("UpdateFunctionConfiguration", request)
        fn = self.service.function(given["FunctionName"])
        _check_revision(fn.latest, given)
        spec = fn.latest.spec
        changes: dict[str, Any] = {}
        fields = {
            "MemorySize": "memory_size",
            "Timeout": "timeout",
            "Handler": "handler",
            "Runtime": "runtime",
        }
        for key, attr in fields.items():
            if key in given:
                changes[attr] = given[key]
        if "Environment" in given:
            changes["environment"] = _variables(given)
        if "EphemeralStorage" in given:
            changes["ephemeral_storage_mb"] = given["EphemeralStorage"]["Size"]
        if "TracingConfig" in given:
            changes["tracing"] = given["TracingConfig"].get("Mode", spec.tracing)
        if "LoggingConfig" in given:
            lc = given["LoggingConfig"]
            changes["log_format"] = lc.get("LogFormat", spec.log_format)
            changes["application_log_level"] = lc.get(
                "ApplicationLogLevel", spec.application_log_level
            )
        await _in_thread(lambda: self.service.configure(fn.name, **changes))
        return _ok(self.configuration(fn.latest))

    async def update_code(self, request: Request) -> Response:
        """UpdateFunctionCode: a new zip for $LATEST; its environments are replaced."""
        given = self._input("UpdateFunctionCode", request)
        fn = self.service.function(given["FunctionName"])
        _check_revision(fn.latest, given)
        archive = _zip_file(given)
        changes: dict[str, Any] = {}
        if "Architectures" in given:
            changes["architecture"] = given["Architectures"][0]
        unpacked = await _in_thread(lambda: unpack(archive, self.code_root, fn.name))
        if given.get("DryRun"):  # the zip is checked by unpacking it; nothing changes
            self._discard_code(fn.name, unpacked.folder)
            return _ok(self.configuration(fn.latest))
        old, timeout = fn.latest.spec.code_dir, fn.latest.spec.timeout
        try:
            await _in_thread(
                lambda: self.service.configure(fn.name, code_dir=unpacked.folder, **changes)
            )
        except BaseException:
            self._discard_code(fn.name, unpacked.folder)
            raise
        self._code_info[unpacked.folder] = (unpacked.size, unpacked.sha256)
        self._created.add(fn.name)
        if not any(v.spec.code_dir == old for v in fn.versions.values()):
            self._discard_later(fn.name, [old], timeout)  # unless a published version runs it
        version = fn.latest
        if given.get("Publish"):
            version = fn.versions[self.service.publish_version(fn.name)]
        return _ok(self.configuration(version))

    def _discard_later(self, name: str, folders: list[Path], timeout_s: float) -> None:
        """Remove code folders once nothing runs from them: an invocation in flight on them may
        still import from them until its timeout. `discard_now` removes what is left."""
        loop = asyncio.get_running_loop()
        for folder in folders:
            self._discarding.add((name, folder))
            loop.call_later(timeout_s + 1, self._discard_soon, name, folder)

    def _discard_soon(self, name: str, folder: Path) -> None:
        if (name, folder) in self._discarding:
            self._discarding.discard((name, folder))
            asyncio.get_running_loop().run_in_executor(None, self._discard_code, name, folder)

    def discard_now(self) -> None:
        """Remove the code folders still waiting to be (`serve` calls it once every environment
        is gone)."""
        pending, self._discarding = self._discarding, set()
        for name, folder in pending:
            self._discard_code(name, folder)

    def _discard_code(self, name: str, folder: Path) -> None:
        """Remove a code folder this API unpacked (never one a template points at), and the
        function's folder if nothing else is left in it."""
        if folder.parent == self.code_root / name:
            shutil.rmtree(folder, ignore_errors=True)
            self._code_info.pop(folder, None)
            with contextlib.suppress(OSError):
                folder.parent.rmdir()

    async def publish_version(self, request: Request) -> Response:
        given = self._input("PublishVersion", request)
        fn = self.service.function(given["FunctionName"])
        _check_revision(fn.latest, given)
        number = self.service.publish_version(fn.name)
        return _ok(self.configuration(fn.versions[number]), 201)

    async def list_versions(self, request: Request) -> Response:
        given = self._input("ListVersionsByFunction", request)
        fn = self.service.function(given["FunctionName"])
        versions = [fn.latest, *sorted(fn.versions.values(), key=lambda v: int(v.name))]
        return _page(given, "Versions", [self.configuration(v) for v in versions])

    async def create_alias(self, request: Request) -> Response:
        given = self._input("CreateAlias", request)
        fn = self.service.function(given["FunctionName"])
        self.service.create_alias(fn.name, given["Name"], given["FunctionVersion"])
        return _ok(self._alias(fn, given["Name"]), 201)

    async def get_alias(self, request: Request) -> Response:
        given = self._input("GetAlias", request)
        fn = self.service.function(given["FunctionName"])
        alias = given["Name"]
        if alias not in fn.aliases:
            raise ResourceNotFoundError(f"Alias not found: {self.service._arn(fn.name, alias)}")
        return _ok(self._alias(fn, alias))

    async def update_alias(self, request: Request) -> Response:
        given = self._input("UpdateAlias", request)
        fn = self.service.function(given["FunctionName"])
        alias = given["Name"]
        if alias not in fn.aliases:
            raise ResourceNotFoundError(f"Alias not found: {self.service._arn(fn.name, alias)}")
        version = given.get("FunctionVersion", fn.aliases[alias])
        self.service.create_alias(fn.name, alias, version, update=True)
        return _ok(self._alias(fn, alias))

    async def list_aliases(self, request: Request) -> Response:
        given = self._input("ListAliases", request)
        fn = self.service.function(given["FunctionName"])
        wanted = given.get("FunctionVersion")
        aliases = [
            self._alias(fn, a)
            for a in sorted(fn.aliases)
            if wanted is None or fn.aliases[a] == wanted
        ]
        return _page(given, "Aliases", aliases)

    async def put_concurrency(self, request: Request) -> Response:
        given = self._input("PutFunctionConcurrency", request)
        value = given["ReservedConcurrentExecutions"]
        fn = self.service.function(given["FunctionName"])
        account = self.service.config.account_concurrency
        others = sum(f.reserved or 0 for f in self.service.functions.values() if f is not fn)
        if account - others - value < min(UNRESERVED_MINIMUM, account):
            raise ApiError(
                400,
                "InvalidParameterValueException",
                "Specified ReservedConcurrentExecutions for function decreases account's "
                "UnreservedConcurrentExecution below its minimum value of "
                f"[{min(UNRESERVED_MINIMUM, account)}].",
            )
        self.service.put_reserved_concurrency(fn.name, value)
        return _ok({"ReservedConcurrentExecutions": value})

    async def get_concurrency(self, request: Request) -> Response:
        given = self._input("GetFunctionConcurrency", request)
        fn = self.service.function(given["FunctionName"])
        return _ok({} if fn.reserved is None else {"ReservedConcurrentExecutions": fn.reserved})

    async def delete_concurrency(self, request: Request) -> Response:
        given = self._input("DeleteFunctionConcurrency", request)
        fn = self.service.function(given["FunctionName"])
        self.service.put_reserved_concurrency(fn.name, None)
        return 204, b"", []

    async def put_provisioned(self, request: Request) -> Response:
        given = self._input("PutProvisionedConcurrencyConfig", request)
        name, qualifier = given["FunctionName"], given["Qualifier"]
        count = given["ProvisionedConcurrentExecutions"]
        version = self._version(name, qualifier)  # not found: 404 now, not later
        account = self.service.config.account_concurrency
        spare = self.service._capacity - min(UNRESERVED_MINIMUM, account)
        if version.function.reserved is None and count > spare:
            raise ApiError(  # and INIT is not started for more environments than can ever run
                400,
                "InvalidParameterValueException",
                "Specified ConcurrentExecutions for function decreases account's "
                "UnreservedConcurrentExecution below its minimum value of "
                f"[{min(UNRESERVED_MINIMUM, account)}].",
            )
        failure: list[Exception] = []

        def provision() -> None:  # INIT takes a while: answer IN_PROGRESS, as Lambda does
            try:
                self.service.put_provisioned_concurrency(name, qualifier, count)
            except Exception as e:
                failure.append(e)

        worker = threading.Thread(target=provision, daemon=True)
        worker.start()
        deadline = time.monotonic() + 5
        while worker.is_alive() and time.monotonic() < deadline:
            doc = self.service.provisioned_concurrency(name, qualifier)
            if doc and doc.get("Status") == "IN_PROGRESS":
                break
            await asyncio.sleep(0.005)
        if failure:
            raise failure[0]
        doc = self.service.provisioned_concurrency(name, qualifier) or {}
        return _ok(_provisioned_doc(doc), 202)

    async def get_provisioned(self, request: Request) -> Response:
        given = self._input("GetProvisionedConcurrencyConfig", request)
        doc = self.service.provisioned_concurrency(given["FunctionName"], given["Qualifier"])
        if doc is None:
            raise ApiError(
                404,
                "ProvisionedConcurrencyConfigNotFoundException",
                "No Provisioned Concurrency Config found for this function",
            )
        return _ok(_provisioned_doc(doc))

    async def account_settings(self, request: Request) -> Response:
        svc = self.service
        total = sum(self._code(f.latest.spec)[0] for f in svc.functions.values())
        return _ok(
            {
                "AccountLimit": {
                    "TotalCodeSize": 80_530_636_800,
                    "CodeSizeUnzipped": UNZIPPED_LIMIT,
                    "CodeSizeZipped": 52_428_800,
                    "ConcurrentExecutions": svc.config.account_concurrency,
                    "UnreservedConcurrentExecutions": svc._capacity,
                },
                "AccountUsage": {"TotalCodeSize": total, "FunctionCount": len(svc.functions)},
            }
        )

    async def create_function(self, request: Request) -> Response:
        """CreateFunction: every field is checked before the zip is unpacked."""
        given = self._input("CreateFunction", request)
        name = given["FunctionName"]
        if name in self.service.functions:
            raise ResourceConflictError(f"Function already exist: {name}")
        if given.get("PackageType", "Zip") != "Zip":
            raise ApiError(
                400, "InvalidParameterValueException", "Only Zip packages can run locally"
            )
        if "Runtime" not in given or "Handler" not in given:
            raise ApiError(
                400,
                "InvalidParameterValueException",
                "Runtime and Handler are mandatory parameters for functions created with "
                "deployment packages.",
            )
        archive = _zip_file(given["Code"])
        logging_config = given.get("LoggingConfig", {})
        spec = FunctionSpec(
            name=name,
            handler=given["Handler"],
            code_dir=self.code_root,  # a folder that exists, until the zip is unpacked
            runtime=given["Runtime"],
            memory_size=given.get("MemorySize", 128),
            timeout=given.get("Timeout", 3),
            environment=_variables(given),
            architecture=given.get("Architectures", ["x86_64"])[0],
            ephemeral_storage_mb=given.get("EphemeralStorage", {}).get("Size", 512),
            log_format=logging_config.get("LogFormat", "Text"),
            application_log_level=logging_config.get("ApplicationLogLevel"),
            tracing=given.get("TracingConfig", {}).get("Mode", "PassThrough"),
        )
        self.code_root.mkdir(parents=True, exist_ok=True)
        validate(spec)
        unpacked = await _in_thread(lambda: unpack(archive, self.code_root, name))
        try:
            await _in_thread(
                lambda: self.service.add_function(spec.replace(code_dir=unpacked.folder))
            )
        except BaseException:
            self._discard_code(name, unpacked.folder)
            raise
        self._code_info[unpacked.folder] = (unpacked.size, unpacked.sha256)
        self._created.add(name)
        fn = self.service.function(name)
        version = fn.latest
        if given.get("Publish"):
            version = fn.versions[self.service.publish_version(name)]
        return _ok(self.configuration(version), 201)

    async def delete_function(self, request: Request) -> Response:
        given = self._input("DeleteFunction", request)
        fn = self.service.function(given["FunctionName"])
        if given.get("Qualifier") not in (None, LATEST):
            raise ApiError(
                400,
                "InvalidParameterValueException",
                "Deleting one version is not supported; delete the function",
            )
        versions = [fn.latest, *fn.versions.values()]
        await _in_thread(lambda: self.service.delete_function(fn.name))
        if fn.name in self._created:
            self._created.discard(fn.name)
            folders = list({v.spec.code_dir for v in versions})
            self._discard_later(fn.name, folders, max(v.spec.timeout for v in versions))
        return 204, b"", []

    async def get_metrics(self, request: Request) -> Response:
        if self.metrics is None:
            raise ApiError(404, "UnknownOperationException", "metrics are off")
        body, content_type = self.metrics.render()
        return 200, body, [(b"content-type", content_type.encode())]


def _provisioned_doc(doc: dict[str, Any]) -> dict[str, Any]:
    out = dict(doc)
    if "LastModified" in out:
        out["LastModified"] = _iso(float(out["LastModified"]))
    return out


def _check_name(name: str) -> None:
    if not FUNCTION_NAME.match(name) or len(name) > 170:
        raise ApiError(
            400,
            "InvalidParameterValueException",
            f"1 validation error detected: Value '{name}' at 'functionName' failed to "
            "satisfy constraint: Member must satisfy regular expression pattern",
        )


def _raw_path(scope: Scope) -> bytes:
    raw: bytes = scope.get("raw_path") or scope["path"].encode()
    return raw


def _json(request: Request) -> dict[str, Any]:
    if not request.body:
        return {}
    body = payload.parse(request.body)  # as an Invoke body: deep, NaN or not UTF-8 is a 400
    if not isinstance(body, dict):
        raise ApiError(400, "InvalidRequestContentException", "The request body must be an object")
    return body


def _ok(doc: dict[str, Any], status: int = 200) -> Response:
    return (
        status,
        json.dumps(doc).encode(),
        [JSON, (b"x-amzn-requestid", new_request_id().encode())],
    )


def _page(given: dict[str, Any], key: str, items: list[Any]) -> Response:
    """Marker/MaxItems pagination as the list calls do it (a Marker is a NextMarker given)."""
    marker = given.get("Marker", "0")
    if not re.fullmatch("[0-9]{1,18}", marker):
        raise ApiError(
            400,
            "InvalidParameterValueException",
            f"1 validation error detected: Value '{marker}' at 'marker' failed to satisfy "
            "constraint: Member must be a NextMarker this API returned",
        )
    start, size = int(marker), given.get("MaxItems", 50)
    doc: dict[str, Any] = {key: items[start : start + size]}
    if start + size < len(items):
        doc["NextMarker"] = str(start + size)
    return _ok(doc)


def _check_revision(version: Version, given: dict[str, Any]) -> None:
    if given.get("RevisionId") not in (None, version.revision):
        raise ApiError(
            412,
            "PreconditionFailedException",
            "The Revision Id provided does not match the latest Revision Id. "
            "Call the GetFunction/GetAlias API to retrieve the latest Revision Id",
        )


def _variables(given: dict[str, Any]) -> dict[str, str]:
    """Environment.Variables of a checked request, held to Lambda's own rules."""
    variables: dict[str, str] = given.get("Environment", {}).get("Variables", {})
    check_environment(variables)
    return dict(variables)


def _zip_file(code: dict[str, Any]) -> bytes:
    """The archive in a checked FunctionCode (CreateFunction) or UpdateFunctionCode request."""
    if "ZipFile" not in code:
        raise ApiError(
            400,
            "InvalidParameterValueException",
            "ZipFile is required: S3 and image code cannot be fetched",
        )
    try:
        return base64.b64decode(code["ZipFile"], validate=True)
    except ValueError:
        raise ApiError(400, "InvalidParameterValueException", "ZipFile is not base64") from None


async def _in_thread(job: Any) -> Any:
    """Run blocking engine work (INIT, shutting environments down) off the event loop."""
    return await asyncio.get_running_loop().run_in_executor(None, job)


async def _lifespan(receive: Receive, send_: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send_({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send_({"type": "lifespan.shutdown.complete"})
            return
