"""The `warmstart` command line: a thin layer over the Python API."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from . import __version__
from .api import Runtime
from .config import Config
from .engine import interpreters
from .engine.limits import MODES
from .engine.payload import parse as parse_payload
from .envvars import read_env_vars, with_variables
from .errors import (
    InvalidRequestContentError,
    ResourceNotFoundError,
    TooManyRequestsError,
    WarmstartError,
)
from .observe import logs as logstreams
from .pricing.model import ARCHITECTURES, HOURS_PER_MONTH
from .sam import parse_parameter_overrides
from .sam.samconfig import read_samconfig
from .tune.runner import MODES as MODES_TUNE
from .tune.stats import STRATEGIES

err = Console(stderr=True, highlight=False, soft_wrap=True)
log = logging.getLogger("warmstart")
out = Console(highlight=False, soft_wrap=True)

EXIT_FUNCTION_ERROR = 1  # the function failed or was throttled
EXIT_USAGE = 2  # bad input: template, arguments (click uses 2 for usage errors too)
TEMPLATE_NAMES = ("template.yaml", "template.yml", "template.json")


class _ConsoleHandler(logging.Handler):
    """warmstart's messages on stderr: one line each, warnings in yellow, the rest dim."""

    def emit(self, record: logging.LogRecord) -> None:
        text = escape(record.getMessage())
        if record.levelno >= logging.WARNING:
            err.print(f"[yellow]warning:[/] {text}", markup=True, soft_wrap=True)
        else:
            err.print(f"[dim]{text}[/]", markup=True, soft_wrap=True)


def _setup_logging(verbose: bool) -> None:
    logger = logging.getLogger("warmstart")
    logger.handlers[:] = [_ConsoleHandler()]
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False


def _fail(message: str, code: int = EXIT_USAGE) -> None:
    # One line, shown as written: a message quotes the user's input, which may hold newlines
    # or what rich would read as markup ([...]).
    line = " ".join(message.split("\n"))
    err.print(f"[bold red]Error:[/] {escape(line)}", markup=True)
    sys.exit(code)


def friendly_errors(f: Callable[..., Any]) -> Callable[..., Any]:
    """A user's mistake becomes one clear line and exit code 2, never a traceback."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except WarmstartError as e:
            _fail(str(e))
        except KeyboardInterrupt:
            err.print("interrupted")
            sys.exit(130)

    return wrapper


def engine_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by every command that runs functions (see `Config`)."""
    options = [
        click.option(
            "-t",
            "--template",
            type=click.Path(dir_okay=False, path_type=Path),
            help="SAM/CloudFormation template (default: ./template.yaml).",
        ),
        click.option(
            "--parameter-overrides",
            multiple=True,
            metavar="KEY=VALUE ...",
            help="Template parameter values, as `sam --parameter-overrides`.",
        ),
        click.option(
            "--build-dir",
            type=click.Path(file_okay=False, path_type=Path),
            help="Run built code from here (e.g. .aws-sam/build).",
        ),
        click.option(
            "--state-dir",
            type=click.Path(file_okay=False, path_type=Path),
            help="Where records and logs go (default: ./.warmstart).",
        ),
        click.option(
            "--isolation",
            type=click.Choice(MODES),
            help="How CPU and memory are limited (default: auto).",
        ),
        click.option(
            "--no-freeze",
            is_flag=True,
            default=None,
            help="Let idle environments run (Lambda freezes them).",
        ),
        click.option(
            "--account-concurrency",
            type=click.IntRange(1),
            metavar="N",
            help="Account concurrency limit (default: 1000).",
        ),
        click.option(
            "--idle-timeout",
            type=click.FloatRange(min=0.001),
            metavar="SECONDS",
            help="Shut idle environments down after this (default: 600).",
        ),
        click.option(
            "--env-vars",
            "env_vars_file",
            type=click.Path(dir_okay=False, path_type=Path),
            metavar="FILE",
            help="Environment variables over the template's, in SAM's format: "
            '{"Parameters": {...}, "Function": {...}}.',
        ),
        click.option("--python", metavar="PATH", help="Run every function with this interpreter."),
        click.option("--region", help="AWS_REGION inside functions (default: us-east-1)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _config(opts: dict[str, Any]) -> Config:
    overrides = " ".join(opts.pop("parameter_overrides", ()) or ())
    no_freeze = opts.pop("no_freeze", None)
    env_file = opts.pop("env_vars_file", None)
    config = Config.resolve(
        state_dir=opts.pop("state_dir", None),
        isolation=opts.pop("isolation", None),
        freeze=False if no_freeze else None,
        account_concurrency=opts.pop("account_concurrency", None),
        idle_timeout_s=opts.pop("idle_timeout", None),
        python=opts.pop("python", None),
        region=opts.pop("region", None),
        build_dir=opts.pop("build_dir", None),
        parameter_overrides=parse_parameter_overrides(overrides),
        env_vars=read_env_vars(env_file) if env_file else None,
    )
    if config.python is not None:  # before the template is read and anything is started
        interpreters.check(config.python)
    return config


def _only_function(rt: Runtime) -> str:
    """The template's function when it has only one; otherwise ask which."""
    if len(rt.functions) != 1:
        raise WarmstartError(f"which function? the template has: {', '.join(rt.functions)}")
    return rt.functions[0]


def _function(rt: Runtime, given: str | None) -> str:
    """The function a command is about: the one given (a name, `name:qualifier` or an ARN),
    which must exist, else the template's only one."""
    if given is None:
        return _only_function(rt)
    try:
        rt.service.resolve(given)
    except ResourceNotFoundError as e:
        raise WarmstartError(f"{e}; the template has: {', '.join(rt.functions)}") from None
    return given


def _from_template(template: Path | None, config: Config, command: str) -> Runtime:
    """The template's Runtime, with the parameter overrides of a samconfig.toml beside it under
    those of the command line (SAM CLI's section for `command`, else its `global` one)."""
    path = find_template(template)
    samconfig = read_samconfig(path.resolve().parent)
    if samconfig is not None:
        given, where = samconfig.parameter_overrides(command)
        if given:
            log.info("%s: parameter overrides from %s", samconfig.path.name, where)
            config = config.replace(parameter_overrides={**given, **config.parameter_overrides})
    return Runtime.from_template(path, config=config)


def find_template(given: Path | None) -> Path:
    if given is not None:
        if not given.exists():
            raise WarmstartError(f"template {given} does not exist")
        return given
    for name in TEMPLATE_NAMES:
        if Path(name).exists():
            return Path(name)
    raise WarmstartError("no template.yaml here: pass -t TEMPLATE, or --handler and --code-dir")


def _parse_env(pairs: tuple[str, ...]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        if "=" not in pair:
            raise WarmstartError(f"--env {pair!r} is not KEY=VALUE")
        k, v = pair.split("=", 1)
        env[k] = v
    return env


def _read_event(event_file: str | None, event: str | None) -> bytes:
    if event_file and event:
        raise WarmstartError("give the event with -e FILE or --event JSON, not both")
    if event_file:
        try:
            data = sys.stdin.buffer.read() if event_file == "-" else Path(event_file).read_bytes()
        except OSError as e:
            raise WarmstartError(f"cannot read event file {event_file}: {e.strerror}") from None
    elif event is not None:
        data = os.fsencode(event)  # the bytes as given, even if they are not UTF-8
    else:
        return b"{}"
    if not data:
        return b"{}"
    try:
        parse_payload(data)  # before any environment starts: the error is the same later
    except InvalidRequestContentError as e:
        where = event_file if event_file and event_file != "-" else "the event"
        raise WarmstartError(f"{where} is not valid JSON: {e.detail}") from None
    return data


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="warmstart")
@click.option("-v", "--verbose", is_flag=True, help="Say more about what the engine does.")
def main(verbose: bool) -> None:
    """Run AWS Lambda functions on this machine with Lambda's execution model.

    Cold and warm starts, concurrency and throttling, memory and CPU limits, timeouts and the
    exact REPORT lines, for the functions of a SAM template.

    \b
    Start with:   warmstart demo
    Then:         warmstart invoke Hello -t template.yaml --event '{"name": "you"}'
                  warmstart logs Hello
    """
    _setup_logging(verbose)
    # SIGTERM ends warmstart like Ctrl-C: environments are shut down on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))


@main.command("build")
@click.argument("functions", nargs=-1)
@click.option(
    "-t",
    "--template",
    type=click.Path(dir_okay=False, path_type=Path),
    help="SAM/CloudFormation template (default: ./template.yaml).",
)
@click.option("--parameter-overrides", multiple=True, metavar="KEY=VALUE ...")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where builds go, in build/ (default: ./.warmstart).",
)
@click.option(
    "--allow-source",
    is_flag=True,
    help="Build a package from its sources when no wheel fits Lambda (this machine's build).",
)
@click.option("--json", "as_json", is_flag=True, help="Print what was built as JSON.")
@friendly_errors
def build_command(
    functions: tuple[str, ...],
    template: Path | None,
    parameter_overrides: tuple[str, ...],
    state_dir: Path | None,
    allow_source: bool,
    as_json: bool,
) -> None:
    """Install functions' and layers' requirements.txt as `sam build` does, for Lambda.

    For each Python function (all, or those named) and each layer it uses: pip installs its
    requirements.txt for the function's python3.X and architecture (manylinux wheels, no
    builds from sources unless --allow-source), the sources are copied over them, into
    .warmstart/build/<LogicalId>. invoke, serve, bench, tune and load then run that build while
    it is newer than the sources. Installed requirements are cached: a build with the same
    requirements.txt only copies them.

    \b
    Examples:
      warmstart build
      warmstart build HelloWorldFunction -t template.yaml --json
    """
    from .build import build

    config = Config.resolve(state_dir=state_dir)

    def told(b: Any) -> None:
        if as_json:
            return
        what = "requirements from the cache" if b.cached else "requirements installed"
        err.print(
            f"[green]built[/] {escape(b.logical_id)} ({b.kind}) in {b.seconds:.2f} s: "
            f"{what if b.requirements else 'no requirements.txt'} -> {escape(str(b.folder))}",
            markup=True,
        )

    done = build(
        find_template(template),
        functions,
        config.state_dir,
        parameter_overrides=" ".join(parameter_overrides),
        allow_source=allow_source,
        progress=told,
    )
    if as_json:
        out.print(json.dumps([b.as_dict() for b in done], indent=2), markup=False)


@main.command()
@click.argument("function", required=False)
@click.option("-e", "--event-file", metavar="FILE", help="Event JSON from a file ('-': stdin).")
@click.option("--event", metavar="JSON", help="Event JSON given inline.")
@click.option("-q", "--qualifier", help="Version or alias to invoke (default: $LATEST).")
@click.option(
    "-n",
    "--times",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Invoke this many times in a row (the first is cold, the rest warm).",
)
@click.option("--handler", help="Handler (module.function) when there is no template.")
@click.option(
    "--code-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The handler's code folder (with --handler).",
)
@click.option("--runtime", help="python3.X for --handler (default: this Python).")
@click.option("--memory", type=int, default=128, show_default=True, help="MB, with --handler.")
@click.option("--timeout", type=int, default=3, show_default=True, help="Seconds, with --handler.")
@click.option(
    "--env",
    "env_vars",
    multiple=True,
    metavar="KEY=VALUE",
    help="Environment variable of the function, over the template and --env-vars (repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per invocation.")
@engine_options
@friendly_errors
def invoke(
    function: str | None,
    event_file: str | None,
    event: str | None,
    qualifier: str | None,
    times: int,
    handler: str | None,
    code_dir: Path | None,
    runtime: str | None,
    memory: int,
    timeout: int,
    env_vars: tuple[str, ...],
    as_json: bool,
    template: Path | None,
    **opts: Any,
) -> None:
    """Invoke a function: the result on stdout, its log (with REPORT) on stderr.

    \b
    Examples:
      warmstart invoke Hello -t template.yaml -e events/hello.json
      warmstart invoke --handler app.handler --code-dir src --event '{"k": "v"}'
      warmstart invoke Hello -n 3 --json | jq .report

    Exit status: 0 success, 1 function error, timeout or throttle, 2 bad input.
    """
    payload = _read_event(event_file, event)
    config = _config(opts)
    if handler or code_dir:
        if not (handler and code_dir):
            raise WarmstartError("--handler and --code-dir go together")
        rt = Runtime.from_handler(
            handler,
            code_dir,
            name=function or "Function",
            runtime=runtime,
            memory_size=memory,
            timeout=timeout,
            environment=_parse_env(env_vars),
            config=config,
        )
        function = function or "Function"
    else:
        if env_vars:
            config = dataclasses.replace(
                config, env_vars=with_variables(config.env_vars, _parse_env(env_vars))
            )
        rt = _from_template(template, config, "local_invoke")
        try:
            function = _function(rt, function)
        except WarmstartError:
            rt.close()
            raise
    failed = False
    with rt:
        for _ in range(times):
            try:
                res = rt.invoke(function, payload, qualifier)
            except TooManyRequestsError as e:
                err.print(f"[bold red]Throttled:[/] {e.reason}", markup=True)
                failed = True
                continue
            failed = failed or bool(res.function_error)
            if as_json:
                out.print(
                    json.dumps(
                        {
                            "request_id": res.request_id,
                            "start_kind": res.start_kind,
                            "function_error": res.function_error,
                            "error_type": res.error_type,
                            "payload": res.payload
                            if not isinstance(res.payload, bytes)
                            else res.raw.decode("utf-8", "replace"),
                            "report": res.report._asdict(),
                            "log": res.log,
                        }
                    ),
                    markup=False,
                )
            else:
                sys.stderr.write(res.log)
                sys.stderr.flush()
                sys.stdout.write(res.raw.decode("utf-8", "replace") + "\n")
                sys.stdout.flush()
        rt.flush()
    sys.exit(EXIT_FUNCTION_ERROR if failed else 0)


_SINCE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")


def parse_since(text: str | None) -> float | None:
    """`10m` -> the epoch time 10 minutes ago (s, m, h, d)."""
    if not text:
        return None
    m = _SINCE.match(text.strip())
    if not m:
        raise WarmstartError(f"--since {text!r}: use a number and s, m, h or d (e.g. 10m)")
    return time.time() - float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


_records_dir = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where warmstart keeps its records (default: ./.warmstart).",
)


@main.command("stats")
@click.argument("function", required=False)
@click.option("--since", metavar="AGE", help="Only invocations this recent: 30s, 10m, 2h, 7d.")
@click.option("--region", default="us-east-1", show_default=True, help="Prices of this region.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_records_dir
@friendly_errors
def stats_command(
    function: str | None, since: str | None, region: str, as_json: bool, state_dir: Path | None
) -> None:
    """What the invocation records say: errors, throttles, cold starts, percentiles, cost.

    Per function (and for all of them): invocations, errors by type, throttles, cold-start
    percentage, Duration and Init Duration p50/p95/p99/max, maximum concurrency, billed
    GB-seconds and their cost. Read from per-minute summaries kept with the records, so a
    million records take a fraction of a second; `--since` counts whole minutes.

    \b
    Examples:
      warmstart stats
      warmstart stats Hello --since 10m
      warmstart stats --json | jq .all.duration_ms
    """
    from .stats import print_stats, stats

    doc = stats(Config.resolve(state_dir=state_dir).state_dir, function, parse_since(since), region)
    if as_json:
        out.print(json.dumps(doc), markup=False)
    else:
        print_stats(out, doc)


@main.command()
@click.argument("function", required=False)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new log lines (Ctrl-C stops).")
@click.option("--since", metavar="AGE", help="Only streams written in the last AGE (30s, 10m, 2h).")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where warmstart keeps logs (default: ./.warmstart).",
)
@friendly_errors
def logs(function: str | None, follow: bool, since: str | None, state_dir: Path | None) -> None:
    """Show a function's logs, one log stream per environment, as CloudWatch keeps them.

    \b
    Examples:
      warmstart logs Hello
      warmstart logs Hello --follow
      warmstart logs --since 10m
    """
    state = Config.resolve(state_dir=state_dir).state_dir
    after = parse_since(since)
    if function and not (state / "logs" / function).is_dir():
        known = logstreams.functions_with_logs(state)
        hint = f" (logs exist for: {', '.join(known)})" if known else ""
        raise WarmstartError(f"no logs for {function} in {state}{hint}")

    def header(stream: logstreams.LogStream) -> None:
        err.print(f"[dim]── /aws/lambda/{stream.function}  {stream.name}[/]", markup=True)

    if not follow:
        streams = logstreams.streams(state, function, after)
        if not streams:
            err.print("[dim]no log streams[/]", markup=True)
        for stream in streams:
            header(stream)
            sys.stdout.write(stream.path.read_text(errors="replace"))
        sys.stdout.flush()
        return

    def rounds() -> Iterator[list[logstreams.LogStream]]:
        while True:
            yield logstreams.streams(state, function, after)

    last = None
    try:
        for stream, text in logstreams.follow(rounds()):
            if stream.path != last:
                header(stream)
                last = stream.path
            sys.stdout.write(text)
            sys.stdout.flush()
    except KeyboardInterrupt:
        pass


@main.command()
@click.argument("template_file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; anything but loopback needs --credentials.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=3001,
    show_default=True,
    help="Port of the Lambda API (boto3, AWS CLI).",
)
@click.option(
    "--api-port",
    type=click.IntRange(0, 65535),
    default=3000,
    show_default=True,
    help="Port of the API Gateway routes of the template.",
)
@click.option(
    "--credentials",
    envvar="WARMSTART_CREDENTIALS",
    metavar="KEY:SECRET",
    help="Lambda API requests must be signed (SigV4) with these (env WARMSTART_CREDENTIALS).",
)
@click.option(
    "--graceful-timeout",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    metavar="SECONDS",
    help="On Ctrl-C/SIGTERM, how long in-flight work may finish.",
)
@click.option(
    "--allow-host",
    "allow_hosts",
    multiple=True,
    metavar="NAME",
    help="Also answer requests whose Host is NAME (repeatable; * = any). Default: loopback "
    "names and addresses, and --host. See docs/security.md.",
)
@click.option(
    "--allow-origin",
    "allow_origins",
    multiple=True,
    metavar="ORIGIN",
    help="Let web pages from ORIGIN (e.g. http://localhost:5173) call the Lambda API, with "
    "CORS (repeatable; * = any). Default: none.",
)
@click.option(
    "--request-timeout",
    type=click.FloatRange(min=1),
    default=60.0,
    show_default=True,
    metavar="SECONDS",
    help="How long a request may take to come whole (its headers: 10 s at most); then 408.",
)
@click.option(
    "--max-connections",
    type=click.IntRange(min=1),
    metavar="N",
    help="Open connections per port; more are answered 503. Default: from the open files limit.",
)
@click.option(
    "-q", "--quiet", is_flag=True, help="No line per invocation on the console (errors too)."
)
@click.option(
    "--jwks",
    multiple=True,
    metavar="FILE|URL",
    help="A JSON Web Key Set (a file, or a loopback URL) to check the signatures of JWT and "
    "Cognito authorizers' tokens with (repeatable; a token's kid picks its key). Without it, "
    "their claims are checked but not their signatures.",
)
@engine_options
@friendly_errors
def serve(
    template_file: Path | None,
    host: str,
    port: int,
    api_port: int,
    credentials: str | None,
    graceful_timeout: float,
    allow_hosts: tuple[str, ...],
    allow_origins: tuple[str, ...],
    request_timeout: float,
    max_connections: int | None,
    quiet: bool,
    jwks: tuple[str, ...],
    template: Path | None,
    **opts: Any,
) -> None:
    """Serve a template's functions: the Lambda API for boto3 and the AWS CLI, and its API routes.

    \b
    Examples:
      warmstart serve template.yaml
      export AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x AWS_DEFAULT_REGION=us-east-1  # any
      aws lambda invoke --endpoint-url http://127.0.0.1:3001 --function-name Hello out.json
      python -c "import boto3; print(boto3.client('lambda', endpoint_url='http://127.0.0.1:3001')
          .invoke(FunctionName='Hello')['Payload'].read())"
      curl http://127.0.0.1:3000/hello

    Each invocation is a line on stderr (time, function, start, outcome, duration, INIT), a
    failure with the last lines of its log; --quiet turns that off. Ctrl-C or SIGTERM: in-flight
    invocations finish (up to --graceful-timeout), then every environment is shut down.
    Asynchronous invocations not yet run are kept and run next time.
    """
    from .frontdoor import Guard
    from .frontdoor import serve as run_server

    guard = Guard(allow_hosts, allow_origins, bound=host)  # a bad value: an error, now
    keys = None
    if credentials:
        if ":" not in credentials:
            raise WarmstartError("--credentials takes KEY:SECRET")
        key, secret = credentials.split(":", 1)
        keys = (key, secret)
    config = dataclasses.replace(_config(opts), batch_environments=True)
    rt = _from_template(template_file or template, config, "local_start_api")

    def ready(endpoints: Any) -> None:
        from rich.table import Table

        functions = Table(title="Functions", title_justify="left", box=None, padding=(0, 2))
        for col in ("function", "runtime", "memory", "timeout", "aliases"):
            functions.add_column(col)
        for name in rt.functions:
            fn = rt.service.function(name)
            spec = fn.latest.spec
            aliases = ", ".join(f"{a} -> {v}" for a, v in sorted(fn.aliases.items()))
            functions.add_row(
                name, spec.runtime, f"{spec.memory_size} MB", f"{spec.timeout} s", aliases
            )
        err.print(functions)
        if endpoints.routes:
            table = Table(title="API routes", title_justify="left", box=None, padding=(0, 2))
            for col in ("method", "path", "function", "API"):
                table.add_column(col)
            for route in endpoints.routes:
                table.add_row(
                    route.method,
                    route.path,
                    route.function + (f":{route.qualifier}" if route.qualifier else ""),
                    f"{route.kind} ({route.payload_version}, stage {route.stage})",
                )
            err.print(table)
        err.print(
            f"Lambda API   [bold]{endpoints.lambda_url}[/]  (endpoint_url for boto3 and "
            "--endpoint-url for the AWS CLI)",
            markup=True,
        )
        if endpoints.api_url:
            err.print(f"API Gateway  [bold]{endpoints.api_url}[/]", markup=True)
        err.print("[dim]Ctrl-C to stop[/]", markup=True)

    run_server(
        rt,
        host=host,
        port=port,
        api_port=api_port,
        credentials=keys,
        graceful_s=graceful_timeout,
        guard=guard,
        request_timeout_s=request_timeout,
        max_connections=max_connections,
        console=None if quiet else sys.stderr,
        on_ready=ready,
        jwks=list(jwks),
    )


@main.command()
@click.argument("function", required=False)
@click.option("--all", "show_all", is_flag=True, help="Every event, not only the failed ones.")
@click.option(
    "--redrive",
    "redrive_ids",
    multiple=True,
    metavar="ID",
    help="Queue this failed event again (repeatable).",
)
@click.option("--redrive-all", is_flag=True, help="Queue every failed event again.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_records_dir
@friendly_errors
def events(
    function: str | None,
    show_all: bool,
    redrive_ids: tuple[str, ...],
    redrive_all: bool,
    as_json: bool,
    state_dir: Path | None,
) -> None:
    """Asynchronous invocations that failed (or all of them), and redriving them.

    Failed events stay until redriven. A running `warmstart serve` on the same state folder
    picks redriven events up at once; otherwise the next one that starts does.

    \b
    Examples:
      warmstart events
      warmstart events Hello --json
      warmstart events --redrive-all
    """
    from .engine.events import list_events, redrive

    state = Config.resolve(state_dir=state_dir).state_dir
    if redrive_ids or redrive_all:
        count = redrive(state, list(redrive_ids) if redrive_ids else None, function)
        out.print(f"{count} event(s) queued again")
        return
    rows = list_events(state, function, None if show_all else "failed")
    if as_json:
        out.print(json.dumps([e.as_dict() for e in rows]), markup=False)
        return
    if not rows:
        err.print("[dim]no events[/]" if show_all else "[dim]no failed events[/]", markup=True)
        return
    from rich.table import Table

    table = Table(box=None, padding=(0, 2))
    for col in ("id", "function", "status", "attempts", "received", "error"):
        table.add_column(col)
    for e in rows:
        error = f"{e.error_type}: {e.error_message}" if e.error_type else ""
        table.add_row(
            e.id,
            e.function,
            e.status,
            str(e.attempts + 1),
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.received_at)),
            error,
        )
    out.print(table)


_FILE = click.Path(dir_okay=False, path_type=Path)


@main.group()
def bench() -> None:
    """Benchmarks of one function: forced cold starts, warm invocations.

    \b
    Examples:
      warmstart bench cold Hello -n 20
      warmstart bench warm Hello -n 1000 --json warm.json
    """


def _write_json(doc: dict[str, Any], path: Path | None) -> bool:
    """Write `--json FILE`; True when it went to stdout ('-') and nothing else should."""
    if path is None:
        return False
    text = json.dumps(doc, indent=2)
    if str(path) == "-":
        out.print(text, markup=False)
        return True
    path.write_text(text + "\n")
    return False


def _progress() -> Any:
    """A progress bar on stderr that goes away when the work is done."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    return Progress(
        "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=err, transient=True,
    )  # fmt: skip


def _bench_options(f: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed([
        click.argument("function", required=False),
        click.option("-q", "--qualifier", help="Version or alias (default: $LATEST)."),
        click.option("--payload", "--event", "payload", metavar="JSON",
                     help="The event (default {})."),
        click.option("-e", "--payload-file", "--event-file", "payload_file", metavar="FILE",
                     help="The event from a file ('-': stdin), e.g. events/event.json."),
        click.option("--json", "json_file", type=_FILE, help="Write JSON here ('-': stdout)."),
    ]):  # fmt: skip
        f = option(f)
    return f


def _bench(kind: str, n: int, template: Path | None, opts: dict[str, Any]) -> None:
    """Run `bench cold` or `bench warm` (opts: the command's and the engine's options)."""
    from .bench import bench_cold, bench_warm
    from .bench.present import print_cold, print_warm

    function, qualifier = opts.pop("function"), opts.pop("qualifier")
    event = _read_event(opts.pop("payload_file"), opts.pop("payload"))
    json_file = opts.pop("json_file")
    # Cold starts time INIT's imports (python -X importtime in the environments).
    config = _config(opts).replace(import_time=kind == "cold")
    run = bench_cold if kind == "cold" else bench_warm
    with _from_template(template, config, "local_invoke") as rt:
        function = _function(rt, function)
        with _progress() as bar:
            task = bar.add_task(f"bench {kind} {function}", total=n)
            doc = run(rt, function, n, qualifier, event,
                      lambda done: bar.update(task, completed=done))  # fmt: skip
    if not _write_json(doc, json_file):
        (print_cold if kind == "cold" else print_warm)(out, doc)


@bench.command("cold")
@_bench_options
@click.option("-n", type=click.IntRange(1), default=20, show_default=True, help="Cold starts.")
@engine_options
@friendly_errors
def bench_cold_command(n: int, template: Path | None, **opts: Any) -> None:
    """N forced cold starts (a new environment each): latency, Init Duration, INIT's imports.

    Environments run with `python -X importtime`, and the imports timed during INIT are summed
    by top-level package: the 15 costliest show where INIT goes (boto3? pandas? your module?).

    \b
    Examples:
      warmstart bench cold Hello -n 20
      warmstart bench cold Hello -q live --json cold.json
    """
    _bench("cold", n, template, opts)


@bench.command("warm")
@_bench_options
@click.option("-n", type=click.IntRange(1), default=1000, show_default=True, help="Invocations.")
@engine_options
@friendly_errors
def bench_warm_command(n: int, template: Path | None, **opts: Any) -> None:
    """Warm invocation latency, and how much of it is warmstart rather than the handler.

    \b
    Examples:
      warmstart bench warm Hello -n 1000
      warmstart bench warm Hello --payload '{"k": "v"}' --json -
    """
    _bench("warm", n, template, opts)


@main.command()
@click.argument("function", required=False)
@click.option(
    "--memory",
    "memory_text",
    default="128,256,512,1024,1536,3008",
    show_default=True,
    metavar="MB,MB,...|ALL",
    help="Memory sizes to try (ALL: 128 to 3008 in steps of 64).",
)
@click.option("--num", type=click.IntRange(1), default=10, show_default=True, help="Runs per size.")
@click.option("--payload", metavar="JSON", help="The event (default {}).")
@click.option(
    "-e",
    "--payload-file",
    "--event-file",
    "payload_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The event from a file, e.g. events/event.json.",
)
@click.option(
    "--payloads-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help='Weighted events: [{"payload": ..., "weight": 3}, ...].',
)
@click.option("--parallel", is_flag=True, help="Run the memory sizes at the same time.")
@click.option("--strategy", type=click.Choice(STRATEGIES), default="cost", show_default=True)
@click.option("--balanced-weight", type=click.FloatRange(0, 1), default=0.5, show_default=True)
@click.option(
    "--discard-top-bottom",
    type=click.FloatRange(0, 0.4),
    default=0.2,
    show_default=True,
    help="Share of fastest and slowest runs left out of the averages (each side).",
)
@click.option("--only-cold-starts", is_flag=True, help="A new environment for every run.")
@click.option("--sleep-between-runs-ms", type=click.FloatRange(0), default=0, metavar="MS")
@click.option(
    "--allowed-exceptions",
    multiple=True,
    metavar="TYPE[,TYPE]",
    help="Error types that count as successes (e.g. HandledError).",
)
@click.option("--pre-processor", metavar="MODULE:FUNC", help="Called with each payload first.")
@click.option("--post-processor", metavar="MODULE:FUNC", help="Called with (payload, result).")
@click.option(
    "--auto-optimize", is_flag=True, help="Write the chosen MemorySize into the template."
)
@click.option("--arch", type=click.Choice(ARCHITECTURES), help="Architecture (default: its own).")
@click.option(
    "--mode",
    type=click.Choice(MODES_TUNE),
    default="measured",
    show_default=True,
    help="model: predict the curve from one profiled run at full speed.",
)
@click.option("--json", "json_file", type=_FILE, help="Write the result as JSON ('-': stdout).")
@click.option("--report", "report_file", type=_FILE, help="Write an HTML report (offline).")
@click.option("--chart", "chart_file", type=_FILE, help="Write the chart (.png or .svg).")
@click.option(
    "--compare",
    nargs=2,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    metavar="BEFORE.json AFTER.json",
    help="Compare two runs instead of running.",
)
@engine_options
@friendly_errors
def tune(
    function: str | None,
    memory_text: str,
    num: int,
    payload: str | None,
    payload_file: Path | None,
    payloads_file: Path | None,
    parallel: bool,
    strategy: str,
    balanced_weight: float,
    discard_top_bottom: float,
    only_cold_starts: bool,
    sleep_between_runs_ms: float,
    allowed_exceptions: tuple[str, ...],
    pre_processor: str | None,
    post_processor: str | None,
    auto_optimize: bool,
    arch: str | None,
    mode: str,
    json_file: Path | None,
    report_file: Path | None,
    chart_file: Path | None,
    compare: tuple[Path, Path] | None,
    template: Path | None,
    **opts: Any,
) -> None:
    """Run a function at several memory sizes and pick the cheapest, fastest or balanced one.

    AWS Lambda Power Tuning's options and output, run here in seconds: each memory size is its
    own version (alias RAM<size>) with its own environments and its CPU share; durations come
    from the REPORT lines, averaged with the trimmed mean; cost from the cost model.

    \b
    Examples:
      warmstart tune Hello -t template.yaml --payload '{"n": 5}'
      warmstart tune Hello --memory 128,512,1024 --strategy balanced --report tuning.html
      warmstart tune Hello --json after.json --chart tuning.png --auto-optimize
      warmstart tune --compare before.json after.json

    Exit status: 0 a memory size was picked, 1 every memory size failed, 2 bad input.
    """
    from .tune import TuneOptions, load_callable, parse_memory
    from .tune import tune as run_tune
    from .tune.present import print_compare, print_result

    if compare:
        from .tune import compare as compare_runs
        from .tune import load_run

        print_compare(out, compare_runs(load_run(compare[0]), load_run(compare[1])), compare)
        return
    payloads = _tune_payloads(payload, payload_file, payloads_file)
    if chart_file is not None and chart_file.suffix.lower() not in (".png", ".svg"):
        raise WarmstartError(f"--chart {chart_file}: use a .png or .svg file name")
    rt = _from_template(template, _config(opts), "local_invoke")
    with rt:
        function = _function(rt, function)
        spec = rt.function(function)
        search = [spec.code_dir, Path.cwd()]
        options = TuneOptions(
            memory=parse_memory(memory_text),
            num=num,
            payloads=payloads,
            parallel=parallel,
            strategy=strategy,
            balanced_weight=balanced_weight,
            discard_top_bottom=discard_top_bottom,
            only_cold_starts=only_cold_starts,
            sleep_between_runs_ms=sleep_between_runs_ms,
            allowed_exceptions=[e for item in allowed_exceptions for e in item.split(",") if e],
            pre_processor=load_callable(pre_processor, search) if pre_processor else None,
            post_processor=load_callable(post_processor, search) if post_processor else None,
            architecture=arch,
            mode=mode,
        )
        if rt.service.isolation.mode == "none" and mode == "measured":
            log.warning(
                "CPU cannot be throttled here (no cgroup access): every memory size runs at "
                "full speed, so the curve is flat; --mode model predicts it instead"
            )
        runs = len(options.memory) * num if mode == "measured" else num
        with _progress() as bar:
            task = bar.add_task(f"tuning {function}", total=runs)

            def progress(done: int, r: Any) -> None:
                bar.update(task, completed=done, description=f"{function} at {r.memory_mb} MB")

            result = run_tune(rt, function, options, progress)
    doc = result.as_dict()
    to_stdout = _write_json(doc, json_file)
    if report_file is not None:
        from .tune import write_report

        write_report(doc, report_file)
    if chart_file is not None:
        from .tune import save_chart

        save_chart(doc, chart_file)
    if not to_stdout:
        print_result(out, doc)
    if doc["power"] is None:
        sys.exit(EXIT_FUNCTION_ERROR)
    if auto_optimize:
        from .tune import set_memory_size

        path = rt.template.path if rt.template is not None else None
        if path is None:
            raise WarmstartError("--auto-optimize needs a template file")
        what = set_memory_size(path, spec.logical_id or spec.name, doc["power"])
        err.print(f"{path}: {spec.logical_id or spec.name} MemorySize {what}")


def _tune_payloads(
    payload: str | None, payload_file: Path | None, payloads_file: Path | None
) -> list[tuple[Any, float]]:
    if sum(x is not None for x in (payload, payload_file, payloads_file)) > 1:
        raise WarmstartError("give one of --payload, --payload-file and --payloads-file")
    try:
        if payload is not None:
            return [(json.loads(payload), 1.0)]
        if payload_file is not None:
            return [(json.loads(payload_file.read_text()), 1.0)]
        if payloads_file is not None:
            items = json.loads(payloads_file.read_text())
            if not isinstance(items, list) or not items:
                raise ValueError("a list of {payload, weight} objects is expected")
            return [(item["payload"], float(item.get("weight", 1))) for item in items]
    except OSError as e:
        raise WarmstartError(f"cannot read the payload: {e.strerror}") from None
    except (ValueError, KeyError, TypeError) as e:
        raise WarmstartError(f"the payload is not valid: {e}") from None
    return [({}, 1.0)]


@main.command()
@click.option("--memory", "memory_mb", type=int, required=True, metavar="MB", help="MemorySize.")
@click.option(
    "--duration-ms", type=float, required=True, metavar="D", help="Duration of one invocation."
)
@click.option("--init-ms", type=float, metavar="I", help="Init Duration, billed on cold starts.")
@click.option(
    "--cold-start-rate",
    type=float,
    metavar="SHARE",
    help="Share of invocations that are cold starts (0-1; default 1 with --init-ms).",
)
@click.option(
    "--invocations", type=int, metavar="N", help="Price N invocations (default 1; first tier)."
)
@click.option(
    "--per-month",
    type=int,
    metavar="N",
    help="Price a month of N invocations: monthly tiers, free tier, provisioned hours.",
)
@click.option("--arch", type=click.Choice(ARCHITECTURES), default="x86_64", show_default=True)
@click.option("--provisioned", type=int, default=0, metavar="N", help="Provisioned environments.")
@click.option(
    "--hours",
    type=float,
    default=HOURS_PER_MONTH,
    show_default=True,
    help="How long provisioned environments (and a SnapStart snapshot) are kept.",
)
@click.option(
    "--ephemeral-storage", type=int, default=512, show_default=True, metavar="MB", help="/tmp size."
)
@click.option("--free-tier", is_flag=True, help="Subtract the monthly free tier.")
@click.option("--snapstart", is_flag=True, help="Cold starts are SnapStart restores.")
@click.option("--restore-ms", type=float, metavar="R", help="Restore Duration, with --snapstart.")
@click.option("--region", default="us-east-1", show_default=True)
@click.option(
    "--prices",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Another price table (the shape of warmstart/pricing/prices.json).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@friendly_errors
def cost(
    memory_mb: int,
    duration_ms: float,
    init_ms: float | None,
    cold_start_rate: float | None,
    invocations: int | None,
    per_month: int | None,
    arch: str,
    provisioned: int,
    hours: float,
    ephemeral_storage: int,
    free_tier: bool,
    snapstart: bool,
    restore_ms: float | None,
    region: str,
    prices: Path | None,
    as_json: bool,
) -> None:
    """What invocations cost on Lambda: duration, requests, provisioned concurrency, storage.

    Billed duration is rounded up to 1 ms, and on-demand cold starts bill INIT too
    (ceil(Duration + Init Duration)). Prices come from a table dated when they were taken.

    \b
    Examples:
      warmstart cost --memory 128 --duration-ms 11722 --invocations 1000
      warmstart cost --memory 128 --duration-ms 162.68 --init-ms 872.98 --json
      warmstart cost --memory 1024 --duration-ms 120 --per-month 50000000 --arch arm64
      warmstart cost --memory 2048 --duration-ms 80 --per-month 10000000 --provisioned 5
    """
    from .pricing import Workload, estimate, load_prices

    if invocations is not None and per_month is not None:
        raise WarmstartError("give --invocations or --per-month, not both")
    if free_tier and per_month is None:
        raise WarmstartError("--free-tier is monthly: use it with --per-month")
    if restore_ms is not None and not snapstart:
        raise WarmstartError("--restore-ms goes with --snapstart")
    workload = Workload(
        memory_mb=memory_mb,
        duration_ms=duration_ms,
        invocations=per_month if per_month is not None else (invocations or 1),
        monthly=per_month is not None,
        init_ms=init_ms,
        cold_start_rate=cold_start_rate,
        architecture=arch,
        provisioned=provisioned,
        hours=hours,
        ephemeral_storage_mb=ephemeral_storage,
        free_tier=free_tier,
        snapstart=snapstart,
        restore_ms=restore_ms,
        region=region,
    )
    est = estimate(workload, load_prices(prices) if prices else None)
    if as_json:
        out.print(json.dumps(est.as_dict()), markup=False)
        return
    from rich.table import Table

    def money(value: float) -> str:
        return f"${value:,.6f}" if value < 1 else f"${value:,.2f}"

    what = "a month of " if est.monthly else ""
    table = Table(box=None, padding=(0, 2), show_header=False)
    table.add_column(style="dim")
    table.add_column(justify="right")
    rows = [
        ("billed duration", f"{est.billed_duration_ms_warm} ms"
         + (f" ({est.billed_duration_ms_cold} ms cold, {est.cold_starts:,} cold starts)"
            if est.billed_duration_ms_cold is not None else "")),
        ("GB-seconds", f"{est.gb_seconds:,.3f}"),
        ("compute", money(est.compute_cost)),
        ("requests", money(est.request_cost)),
    ]  # fmt: skip
    if est.provisioned_cost:
        rows.append(("provisioned concurrency", money(est.provisioned_cost)))
    if est.ephemeral_storage_cost:
        rows.append(("ephemeral storage", money(est.ephemeral_storage_cost)))
    if est.snapstart_cost:
        rows.append(("SnapStart cache and restores", money(est.snapstart_cost)))
    if est.free_tier_gb_seconds or est.free_tier_requests:
        rows.append(("free tier used", f"{est.free_tier_gb_seconds:,.0f} GB-s, "
                     f"{est.free_tier_requests:,} requests"))  # fmt: skip
    rows.append(("per 1,000 invocations", money(est.per_1000_invocations)))
    for row in rows:
        table.add_row(*row)
    table.add_row("[bold]total[/]", f"[bold]{money(est.total)}[/]")
    out.print(
        f"{what}{est.invocations:,} invocation(s) of {est.memory_mb} MB {est.architecture} "
        f"in {est.region} [dim](prices of {est.prices_taken})[/]"
    )
    out.print(table)


@main.command("load")
@click.argument("target", required=False)
@click.option(
    "-c", "--config", "script_path", type=_FILE, required=True, help="The Artillery script (YAML)."
)
@click.option("--json", "json_file", type=_FILE, help="Write the results here ('-': stdout).")
@click.option("--report", type=_FILE, help="Write an HTML report: timelines and a histogram.")
@click.option("--quiet", is_flag=True, help="No line per second while running.")
@click.option("--fail-on-errors", is_flag=True, help="Exit 1 if a request failed or was throttled.")
@click.option("--seed", type=int, help="Seed the scenario choice and the $random templates.")
@engine_options
@friendly_errors
def load_command(
    target: str | None,
    script_path: Path,
    json_file: Path | None,
    report: Path | None,
    quiet: bool,
    fail_on_errors: bool,
    seed: int | None,
    template: Path | None,
    **opts: Any,
) -> None:
    """Run an Artillery load test: open-loop arrivals, latency percentiles, cold starts.

    TARGET is the function for `engine: lambda` scenarios (invoked in-process, no HTTP; default:
    the script's config.target, or the template's only function) or the URL for HTTP scenarios
    (default: config.target), e.g. the API Gateway emulation of `warmstart serve`.

    \b
    Examples:
      warmstart load Hello -c load.yml --report load.html
      warmstart load http://127.0.0.1:3000 -c api.yml --json results.json
    """
    import asyncio

    from .load import LoadRun, load_script
    from .load.present import live_line, print_summary, write_report

    script = load_script(script_path)
    for key in script.unknown:
        err.print(f"[yellow]warning:[/] {script_path}: {key} is not understood; ignored")
    lambdas = any(s.engine == "lambda" for s in script.scenarios)
    if target and not lambdas:
        script.target = target
    if not lambdas and not (script.target or "").startswith(("http://", "https://")):
        raise WarmstartError("HTTP scenarios need an http:// URL (TARGET or config.target)")
    on_second = None if quiet or json_file == Path("-") else (lambda s: err.print(live_line(s)))
    with contextlib.ExitStack() as stack:
        rt, function = None, None
        if lambdas:
            rt = stack.enter_context(_from_template(template, _config(opts), "local_invoke"))
            function = _function(rt, target or script.target)
        run = LoadRun(script, rt, function, on_second, seed=seed)
        doc = asyncio.run(run.run())
    if not _write_json(doc, json_file):
        print_summary(doc, out)
    if report is not None:
        write_report(doc, report, f"{script_path.name} against {function or script.target}")
        err.print(f"report: {report}")
    if fail_on_errors and (doc["errors"] or doc["throttles"]):
        sys.exit(1)


@main.command()
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where records and logs go (default: ./.warmstart).",
)
@click.option("--isolation", type=click.Choice(MODES), help="How CPU and memory are limited.")
@friendly_errors
def demo(state_dir: Path | None, isolation: str | None) -> None:
    """Run the example app shipped with warmstart and show what happened.

    A cold start, warm starts, a handler error, a throttle, a provisioned alias and the same
    CPU-bound function at two memory sizes, each with its REPORT line.
    """
    from .demo import run_demo

    sys.exit(run_demo(Config.resolve(state_dir=state_dir, isolation=isolation), err, out))


if __name__ == "__main__":
    main()
