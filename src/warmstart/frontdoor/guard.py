"""Whom `warmstart serve` answers: the Host and Origin rules of its two ports.

A server on 127.0.0.1 is within reach of every web page the developer's browser opens. A page
may POST to it without asking (a "simple" cross-site request: `text/plain`, no preflight), and a
page on a name its author controls may point that name at 127.0.0.1 (DNS rebinding) and then
read the answers as its own. The Lambda API runs the code it is sent (CreateFunction, Invoke);
the API Gateway port runs the template's. So both ports answer only Host names that cannot be
rebound (loopback addresses, `localhost`, the address listened on, names the user allows), and
the Lambda API answers no browser page but the origins the user allows, with CORS for those.
See docs/security.md.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import WarmstartError

__all__ = ["Guard", "Refusal", "is_json", "noted"]

# Management calls with a body must say it is JSON: botocore's rest-json serializer (boto3, the
# AWS CLI) and the other SDKs send application/json; the x-amz-json types are AWS's own. A
# browser sends text/plain, form types or nothing without a preflight; none of them is here.
JSON_TYPES = frozenset(
    {"application/json", "application/x-amz-json-1.0", "application/x-amz-json-1.1"}
)
# What a browser tool the user allowed may read of an answer (the SDKs read these).
_EXPOSED = (
    b"x-amzn-requestid, x-amzn-errortype, x-amz-function-error, x-amz-log-result, "
    b"x-amz-executed-version"
)
_BROWSER_SITES = frozenset({b"cross-site", b"same-site"})
_SEEN_LIMIT = 256  # distinct Host values remembered; past it, each is judged again
_NAME = re.compile(r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$")
_ORIGIN = re.compile(r"^([a-z][a-z0-9+.-]*)://([^/?#\s@]+)/?$")


@dataclass(frozen=True)
class Refusal:
    """A request refused from its headers: HTTP status, AWS error code, a message that says why."""

    status: int
    code: str
    message: str


def noted(
    headers: Iterable[tuple[bytes, bytes]],
) -> tuple[bytes | None, int, bytes | None, bytes | None]:
    """(Host, how many Host headers, Origin, Sec-Fetch-Site) of lower-cased header pairs."""
    host = origin = site = None
    hosts = 0
    for k, v in headers:
        if k == b"host":
            host = v
            hosts += 1
        elif k == b"origin":
            origin = v
        elif k == b"sec-fetch-site":
            site = v
    return host, hosts, origin, site


def is_json(content_type: str | None) -> bool:
    """Whether a Content-Type is one of AWS's JSON types. Example: is_json("application/json")"""
    if not content_type:
        return False
    return content_type.split(";", 1)[0].strip().lower() in JSON_TYPES


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _host_part(value: str) -> str | None:
    """The name or address of a Host header value (port dropped, lower case); None if malformed."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        name, rest = value[1:end], value[end + 1 :]
        if end < 0 or _ip(name) is None:
            return None
    else:
        name, colon, port = value.partition(":")
        rest = colon + port
    if rest and not (rest[0] == ":" and rest[1:].isdigit()):
        return None
    name = name[:-1] if name.endswith(".") else name  # "localhost." is localhost
    if not name:
        return None
    address = _ip(name)
    if address is not None:
        return str(address)
    return name if _NAME.match(name) else None


def _allowed_host(value: str) -> str:
    """An --allow-host value, checked: a name or an address, without a port."""
    text = value.strip().lower()
    bare = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    address = _ip(bare)
    if address is not None:
        return str(address)
    name = text[:-1] if text.endswith(".") else text
    if ":" in name:
        raise WarmstartError(f"--allow-host takes a name without a port: {value!r}")
    if not _NAME.match(name):
        raise WarmstartError(f"--allow-host: {value!r} is not a host name or an IP address")
    return name


def _allowed_origin(value: str) -> bytes:
    """An --allow-origin value, checked: scheme://host[:port] as browsers send it, or null."""
    text = value.strip().lower()
    if text == "null":
        return b"null"
    m = _ORIGIN.match(text)
    if not m:
        raise WarmstartError(
            f"--allow-origin takes an origin such as http://localhost:5173 (scheme, host and "
            f"port, no path), or *: {value!r}"
        )
    return f"{m.group(1)}://{m.group(2)}".encode()


class Guard:
    """The Host and Origin rules of `warmstart serve`, for both ports and both Invoke paths.

    `hosts`: names allowed besides loopback ones ("*": any); `origins`: browser origins allowed
    on the Lambda API ("*": any); `bound`: the address serve listens on (its Host is allowed;
    0.0.0.0 or :: allow every IP address, which DNS rebinding cannot produce).

    Example:
        guard = Guard(hosts=["devbox.lan"], origins=["http://localhost:5173"])
        guard.check(b"127.0.0.1:3001", 1, None, None)   # None: answer it
        guard.check(b"evil.example:3001", 1, None, None)  # Refusal(403, ...)
    """

    def __init__(
        self, hosts: Iterable[str] = (), origins: Iterable[str] = (), bound: str = "127.0.0.1"
    ) -> None:
        hosts, origins = list(hosts), list(origins)
        self.any_host = "*" in hosts
        self.any_origin = "*" in origins
        self.names = frozenset(_allowed_host(h) for h in hosts if h != "*")
        self.origins = frozenset(_allowed_origin(o) for o in origins if o != "*")
        bare = bound.strip("[]").lower()
        address = _ip(bare)
        self.bound = str(address) if address is not None else bare
        self.wildcard = address is not None and address.is_unspecified
        self._seen: dict[bytes, bool] = {}  # accepted Host values

    def host_ok(self, value: bytes) -> bool:
        """Whether a Host header value names this server in a way DNS rebinding cannot."""
        if value in self._seen:
            return True
        ok = self._judge(value)
        if ok and len(self._seen) < _SEEN_LIMIT:  # (refused values would fill it: a hostile
            self._seen[value] = True  # client can send any number of them)
        return ok

    def _judge(self, value: bytes) -> bool:
        if self.any_host:
            return True
        try:
            name = _host_part(value.decode("ascii"))
        except UnicodeDecodeError:
            return False
        if name is None:
            return False
        if name == "localhost" or name.endswith(".localhost"):  # RFC 6761: always loopback
            return True
        if name in self.names or name == self.bound:
            return True
        address = _ip(name)
        return address is not None and (address.is_loopback or self.wildcard)

    def check_host(self, host: bytes | None, hosts: int, http_10: bool = False) -> Refusal | None:
        """None if the request's Host (one header, or none on HTTP/1.0) is one we answer."""
        if hosts == 1 and host is not None:
            if self.host_ok(host):
                return None
            shown = host.decode("latin-1")
            return Refusal(
                403,
                "AccessDeniedException",
                f"Host {shown!r} is not an address of this server: warmstart serve answers "
                "loopback addresses and names, the address it listens on and names allowed "
                "with --allow-host (a guard against DNS rebinding; see docs/security.md)",
            )
        if hosts == 0 and http_10:
            return None
        return Refusal(
            400, "BadRequestException", "An HTTP/1.1 request needs exactly one Host header"
        )

    def check(
        self,
        host: bytes | None,
        hosts: int,
        origin: bytes | None,
        site: bytes | None,
        http_10: bool = False,
    ) -> Refusal | list[tuple[bytes, bytes]] | None:
        """The Lambda API's rule: None to answer the request, a Refusal, or the CORS headers
        to add to the answer of an origin the user allowed."""
        if hosts == 1 and origin is None and site is None and self._seen.get(host or b""):
            return None  # the common case, in a lookup: a tool on this machine
        refusal = self.check_host(host, hosts, http_10)
        if refusal is not None:
            return refusal
        if origin is not None:
            if self.any_origin or origin.lower() in self.origins:
                return self.cors(origin)
            shown = origin.decode("latin-1")
            return Refusal(
                403,
                "AccessDeniedException",
                f"Cross-origin request from {shown!r} refused: the Lambda API of warmstart "
                "serve answers web pages only from origins allowed with --allow-origin "
                "(see docs/security.md)",
            )
        if site is not None and site in _BROWSER_SITES and not self.any_origin:
            return Refusal(
                403,
                "AccessDeniedException",
                "Request from another site's web page refused (Sec-Fetch-Site: "
                f"{site.decode('latin-1')}): allow its origin with --allow-origin",
            )
        return None

    @staticmethod
    def cors(origin: bytes) -> list[tuple[bytes, bytes]]:
        """The headers that let an allowed origin's page read an answer."""
        return [
            (b"access-control-allow-origin", origin),
            (b"access-control-expose-headers", _EXPOSED),
            (b"vary", b"Origin"),
        ]

    @staticmethod
    def preflight(
        origin: bytes, request_headers: bytes | None, private_network: bool
    ) -> list[tuple[bytes, bytes]]:
        """The answer's headers to an allowed origin's CORS preflight (OPTIONS)."""
        headers = [
            *Guard.cors(origin),
            (b"access-control-allow-methods", b"GET, POST, PUT, DELETE"),
            (b"access-control-max-age", b"600"),
        ]
        if request_headers:
            headers.append((b"access-control-allow-headers", request_headers))
        if private_network:  # Chrome asks before a public page may reach a loopback address
            headers.append((b"access-control-allow-private-network", b"true"))
        return headers
