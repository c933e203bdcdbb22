"""JWT authorizers of HTTP APIs, and Cognito authorizers of REST APIs, checked as API Gateway
checks a token: an RSA signing method and a `kid`, the signature (with a key set given to
`serve --jwks`), `iss`, `aud` (or `client_id`), `exp` and `nbf`, and the route's scopes.

API Gateway fetches the issuer's keys from its `jwks_uri`; warmstart reads no network but a
loopback URL or a file. Without a key set, every claim is checked but the signature is not (a line
at start says so for each authorizer).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
from jwt.types import Options

from ..errors import WarmstartError
from .authorizers import (
    HTTP_FORBIDDEN,
    HTTP_UNAUTHORIZED,
    REST_UNAUTHORIZED,
    AuthRequest,
    Refusal,
    Source,
    identity_value,
)

__all__ = ["JwtAuthorizer", "KeySet"]

log = logging.getLogger("warmstart")

RSA_ALGORITHMS = ("RS256", "RS384", "RS512")  # API Gateway takes RSA-signed tokens only
KEYS_LIMIT = 1024 * 1024  # bytes of a key set
REFETCH_S = 10.0  # a URL's keys are fetched again for an unknown kid, at most this often
FETCH_TIMEOUT_S = 5.0  # for the whole of a key set
_NAME = re.compile(r"[A-Za-z0-9]{1,16}")  # what of a token's header an answer may repeat


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect could lead off loopback


_OPENER = urllib.request.build_opener(_NoRedirect, urllib.request.ProxyHandler({}))


def _parse_keys(data: bytes, where: str) -> dict[str, Any]:
    """The RSA public keys of a JWKS document, by kid."""
    if len(data) > KEYS_LIMIT:
        raise WarmstartError(f"--jwks {where}: larger than {KEYS_LIMIT} bytes")
    try:
        document = json.loads(data)
    except ValueError as e:
        raise WarmstartError(f"--jwks {where}: not a JSON Web Key Set (not JSON: {e})") from None
    try:
        keys = jwt.PyJWKSet.from_dict(document).keys if isinstance(document, dict) else []
    except jwt.PyJWKSetError:
        keys = []
    found = {k.key_id: k.key for k in keys if k.key_type == "RSA" and k.key_id}
    if not found:
        raise WarmstartError(
            f"--jwks {where}: not a JSON Web Key Set with an RSA key that has a kid"
        )
    return found


def _download(url: str) -> bytes:
    """A key set from a loopback URL: no redirect, no proxy, a bounded size and time."""
    deadline = time.monotonic() + FETCH_TIMEOUT_S
    parts: list[bytes] = []
    size = 0
    try:
        with _OPENER.open(url, timeout=FETCH_TIMEOUT_S) as r:
            while size <= KEYS_LIMIT and time.monotonic() < deadline:
                chunk = r.read1(65536)
                if not chunk:
                    return b"".join(parts)
                parts.append(chunk)
                size += len(chunk)
    except (OSError, ValueError) as e:
        raise WarmstartError(f"--jwks {url}: cannot be read ({e})") from None
    if size > KEYS_LIMIT:
        return b"".join(parts)  # (refused as too large)
    raise WarmstartError(f"--jwks {url}: not read whole within {FETCH_TIMEOUT_S} s")


class KeySet:
    """Public keys from `--jwks` files and loopback URLs, one pool: a token's kid picks its key.

    Example: keys = KeySet(["jwks.json", "http://127.0.0.1:8080/.well-known/jwks.json"])
    """

    def __init__(self, sources: list[str]) -> None:
        from .server import is_loopback  # (server imports this module's importers)

        self.keys: dict[str, Any] = {}
        self.urls: list[str] = []
        self.fetched = 0.0
        for source in sources:
            parts = urlsplit(source)
            if parts.scheme in ("http", "https"):
                if not is_loopback(parts.hostname or ""):
                    raise WarmstartError(
                        f"--jwks {source}: only a file or a loopback URL (http://127.0.0.1:PORT/"
                        "...) is read; warmstart fetches nothing from the network"
                    )
                self.urls.append(source)
                continue
            path = Path(source)
            try:
                if not path.is_file():  # (a FIFO or a device could be read without end)
                    raise WarmstartError(f"--jwks {source}: not a file, nor a loopback URL")
                with path.open("rb") as f:
                    data = f.read(KEYS_LIMIT + 1)
            except OSError as e:
                raise WarmstartError(f"--jwks {source}: {e.strerror or e}") from None
            self.keys.update(_parse_keys(data, source))
        if self.urls:
            try:
                self._fetch()
            except WarmstartError as e:
                log.warning("%s; tried again when a token names a key not yet known", e)

    def _fetch(self) -> None:
        self.fetched = time.monotonic()
        for url in self.urls:
            self.keys.update(_parse_keys(_download(url), url))

    async def key(self, kid: str) -> Any:
        """The key of `kid`, fetching the URLs again (not too often) when it is not known."""
        if kid not in self.keys and self.urls and time.monotonic() - self.fetched > REFETCH_S:
            try:
                await asyncio.to_thread(self._fetch)
            except WarmstartError as e:
                log.warning("%s", e)
        return self.keys.get(kid)


def _claim_text(value: Any) -> str:
    """A claim as API Gateway passes it to the function: text ("[a b]" for a list)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + " ".join(_claim_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _rest_claims(claims: dict[str, Any]) -> dict[str, str]:
    """A Cognito authorizer's claims: text, the times as dates (`Thu Jan 01 00:00:00 UTC 2030`)."""
    out = {}
    for k, v in claims.items():
        if k in ("exp", "iat") and isinstance(v, (int, float)) and not isinstance(v, bool):
            out[k] = time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime(v))
        else:
            out[k] = _claim_text(v)
    return out


def _token_scopes(claims: dict[str, Any]) -> list[str]:
    scopes = claims.get("scope", claims.get("scp"))
    if isinstance(scopes, str):
        return scopes.split()
    if isinstance(scopes, list):
        return [s for s in scopes if isinstance(s, str)]
    return []


@dataclass
class JwtAuthorizer:
    """An HTTP API's JWT authorizer, or a REST API's Cognito authorizer (`rest=True`).

    `issuer` is matched whole (a Cognito pool whose id only AWS knows: any pool's issuer).
    """

    name: str
    issuer: re.Pattern[str]
    audience: tuple[str, ...]
    source: Source
    keys: KeySet | None
    rest: bool = False
    validation: re.Pattern[str] | None = None  # REST: Identity.ValidationExpression

    def _invalid(self, why: str, scopes: tuple[str, ...]) -> Refusal:
        if self.rest:
            return REST_UNAUTHORIZED
        header = (
            f'Bearer scope="{" ".join(scopes)}" error="invalid_token" error_description="{why}"'
        )
        return Refusal(401, HTTP_UNAUTHORIZED.body, None, ((b"www-authenticate", header.encode()),))

    async def authorize(
        self, request: AuthRequest, scopes: tuple[str, ...]
    ) -> Refusal | dict[str, Any]:
        token = (identity_value(request, self.source) or "").strip()
        if token[:7].lower() == "bearer ":
            token = token[7:].strip()
        if not token or (self.validation is not None and not self.validation.fullmatch(token)):
            return REST_UNAUTHORIZED if self.rest else HTTP_UNAUTHORIZED
        claims = await self.claims(token)
        if isinstance(claims, str):
            return self._invalid(claims, scopes)
        granted = _token_scopes(claims)
        if self.rest:
            # Cognito: an ID token, or an access token with one of the method's scopes.
            use = claims.get("token_use")
            if (use != "access" or not set(granted) & set(scopes)) if scopes else use != "id":
                return REST_UNAUTHORIZED
            return {"claims": _rest_claims(claims)}
        if scopes and not set(granted) & set(scopes):
            header = (
                f'Bearer scope="{" ".join(scopes)}" error="insufficient_scope" '
                'error_description="the token does not have the scopes the route requires"'
            )
            return Refusal(
                403, HTTP_FORBIDDEN.body, None, ((b"www-authenticate", header.encode()),)
            )
        texts = {k: _claim_text(v) for k, v in claims.items()}
        found = {"claims": texts, "scopes": granted or None}
        return {"jwt": found} if request.version == "2.0" else found

    async def claims(self, token: str) -> dict[str, Any] | str:
        """The token's claims, or why API Gateway would refuse it."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            return "the token could not be decoded"
        alg = header.get("alg")
        if alg not in RSA_ALGORITHMS:
            shown = alg if isinstance(alg, str) and _NAME.fullmatch(alg) else "of the token"
            return f"signing method {shown} is invalid"
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            return "the token has no kid"
        # API Gateway checks these claims and no others (iss and aud below, with its words).
        options = Options(
            verify_signature=self.keys is not None, verify_exp=True, verify_nbf=True,
            verify_aud=False, verify_iss=False, verify_iat=False, verify_sub=False,
            verify_jti=False, require=["exp"],
        )  # fmt: skip
        try:
            if self.keys is None:
                claims = jwt.decode(token, options=options)
            else:
                key = await self.keys.key(kid)
                if key is None:
                    return "no key of the --jwks key sets has the token's kid"
                claims = jwt.decode(token, key, algorithms=[alg], options=options)
        except jwt.ExpiredSignatureError:
            return "the token has expired"
        except jwt.ImmatureSignatureError:
            return "the token is not valid yet"
        except jwt.InvalidSignatureError:
            return "the token's signature is invalid"
        except jwt.MissingRequiredClaimError as e:
            return f"the token has no {e.claim} claim"
        except jwt.InvalidTokenError:
            return "the token could not be decoded"
        issuer = claims.get("iss")
        if not isinstance(issuer, str) or not self.issuer.fullmatch(issuer):
            return "the token does not have a valid issuer"
        if self.audience:
            aud = claims.get("aud", claims.get("client_id"))
            given = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
            if not set(self.audience) & {a for a in given if isinstance(a, str)}:
                return "the token does not have a valid audience"
        return claims
