"""Checking AWS Signature Version 4 on Lambda API requests, with botocore's own signer.

The expected signature is computed by botocore (the code that signs boto3's and the AWS CLI's
requests) from the request as received: the headers the client says it signed, the raw path and
query, the body, and the time in X-Amz-Date. Nothing cryptographic is written here.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timezone

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

__all__ = ["SignatureError", "Verifier"]

MAX_SKEW_S = 300  # AWS rejects requests signed more than 5 minutes away from its clock
_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=([^/,\s]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request,\s*"
    r"SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]{64})$"
)
_PAYLOAD_HASH = "x-amz-content-sha256"
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


@dataclass(frozen=True)
class SignatureError(Exception):
    """Why a request is refused: AWS's error code and message (always HTTP 403)."""

    code: str
    message: str


class Verifier:
    """Accepts requests signed with one access key pair.

    Example:
        Verifier("AKIDEXAMPLE", "secret").check("POST", "/2015-03-31/...", "", headers, body)
    """

    def __init__(self, access_key_id: str, secret_access_key: str) -> None:
        self.access_key_id = access_key_id
        self._secret = secret_access_key

    def check(
        self, method: str, raw_path: str, query: str, headers: dict[str, str], body: bytes | None
    ) -> None:
        """Raise SignatureError unless the request carries a valid signature of ours.

        `body` None: what can be checked before the body is read (the Authorization header's
        shape, the access key, the time; the whole signature if the client signed the body's
        SHA-256 in x-amz-content-sha256, which the body is compared with once it is read).
        """
        auth = headers.get("authorization")
        if not auth:
            raise SignatureError(
                "MissingAuthenticationTokenException", "Missing Authentication Token"
            )
        m = _AUTH.match(auth.strip())
        if not m:
            raise SignatureError(
                "IncompleteSignatureException",
                "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature'.",
            )
        key_id, _, region, service, signed, signature = m.groups()
        if not hmac.compare_digest(key_id, self.access_key_id):
            raise SignatureError(
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            )
        amz_date = headers.get("x-amz-date", "")
        try:
            when = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
        except ValueError:
            raise SignatureError(
                "IncompleteSignatureException", "X-Amz-Date is missing or invalid."
            ) from None
        if abs((datetime.now(timezone.utc) - when).total_seconds()) > MAX_SKEW_S:
            raise SignatureError(
                "InvalidSignatureException",
                f"Signature expired: {amz_date} is now earlier or later than 5 minutes from now.",
            )
        names = signed.split(";")
        # Signed, this header stands for the body in the signature (botocore's signer takes it
        # as it is), so it must be the body's hash (compared once the body is read); S3's
        # UNSIGNED-PAYLOAD and STREAMING-* values would leave the body unsigned.
        payload_hash = headers.get(_PAYLOAD_HASH)
        if payload_hash is not None and not _SHA256.match(payload_hash):
            raise SignatureError(
                "InvalidSignatureException",
                f"x-amz-content-sha256 must be the SHA-256 of the body, not {payload_hash!r}: "
                "the Lambda API takes signed payloads only.",
            )
        if body is None and (payload_hash is None or _PAYLOAD_HASH not in names):
            return  # the rest needs the body
        if (
            body is not None
            and payload_hash is not None
            and not hmac.compare_digest(hashlib.sha256(body).hexdigest(), payload_hash.lower())
        ):
            raise SignatureError(
                "InvalidSignatureException",
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            )
        missing = [n for n in names if n not in headers]
        if missing:
            raise SignatureError(
                "InvalidSignatureException", f"Signed header {missing[0]} is missing."
            )
        url = f"http://{headers.get('host', 'localhost')}{raw_path}" + (
            f"?{query}" if query else ""
        )
        request = AWSRequest(
            method=method, url=url, data=body or b"", headers={n: headers[n] for n in names}
        )
        request.context["timestamp"] = amz_date
        token = headers.get("x-amz-security-token")
        signer = SigV4Auth(Credentials(key_id, self._secret, token), service, region)
        string_to_sign = signer.string_to_sign(request, signer.canonical_request(request))
        expected = signer.signature(string_to_sign, request)
        if not hmac.compare_digest(expected, signature):
            raise SignatureError(
                "InvalidSignatureException",
                "The request signature we calculated does not match the signature you provided. "
                "Check your AWS Secret Access Key and signing method.",
            )
