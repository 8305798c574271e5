"""Parse a request's Signature V4 credentials without the secret, enforcing S3's rules.

Follows "Authenticating Requests: Using the Authorization Header" (sigv4-auth-using-authorization-
header.html) and "Authenticating Requests: Using Query Parameters" (sigv4-query-string-auth.html)
in the S3 API reference. Parsing needs no secret: the proxy parses, looks the access key up, then
calls ``verify.verify_signature`` (lakeFS's Parse/Verify split).

What is enforced here, each with S3's error code:
- one mechanism only: an Authorization header or X-Amz-* query parameters (``InvalidRequest``);
  SigV2 and other algorithms are refused (``InvalidRequest``);
- a well-formed credential whose date equals the request date, whose region is ours, whose
  service is ``s3`` and whose terminator is ``aws4_request`` (``AuthorizationHeaderMalformed`` /
  ``AuthorizationQueryParametersError``);
- the clock: 15 minutes of skew for header auth (``RequestTimeTooSkewed``); for presigned URLs
  X-Amz-Expires <= 604800 and not expired (``AccessDenied``; 0 has expired on arrival);
- header auth carries x-amz-content-sha256 with one of the values S3 accepts;
- ``host`` is signed, and so is every ``x-amz-*`` header present except x-amz-content-sha256
  (which the canonical request covers anyway): otherwise a man in the middle could add, say,
  ``x-amz-copy-source`` or ``x-amz-acl`` to a signed request (``AccessDenied``).
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from email.utils import parsedate_to_datetime
from typing import Any

from .canonical import HeaderMap, _form_decode, collect_headers
from .errors import SigningError
from .keys import ALGORITHM, credential_scope

__all__ = [
    "ParsedAuth",
    "parse_request_auth",
    "parse_authorization_header",
    "parse_amz_date",
    "UNSIGNED_PAYLOAD",
    "STREAMING_PAYLOAD",
    "STREAMING_PAYLOAD_TRAILER",
    "STREAMING_UNSIGNED_PAYLOAD_TRAILER",
    "PAYLOAD_HASH_KEYWORDS",
    "MAX_PRESIGN_EXPIRES",
    "QUERY_AUTH_PARAMS",
]

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
# The query parameters of a presigned (query-authenticated) SigV4 request: the credential, not the operation.
QUERY_AUTH_PARAMS = frozenset({"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
                               "X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Security-Token"})
STREAMING_PAYLOAD = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_PAYLOAD_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_PAYLOAD_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
PAYLOAD_HASH_KEYWORDS = frozenset(
    {UNSIGNED_PAYLOAD, STREAMING_PAYLOAD, STREAMING_PAYLOAD_TRAILER, STREAMING_UNSIGNED_PAYLOAD_TRAILER}
)
MAX_PRESIGN_EXPIRES = 7 * 24 * 3600

_set_attribute = object.__setattr__
_EPOCH = datetime(1970, 1, 1)
_SECOND = timedelta(seconds=1)
_HEX64 = re.compile(r"[0-9a-f]{64}")
_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=([^,= ]+), ?SignedHeaders=([^,= ]+), ?Signature=([^,= ]+)"
)
_UNSUPPORTED = "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256."
_QUERY_PARAMS_REQUIRED = (
    "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, "
    "X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters."
)
_PRESIGN_KEYS = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature")
_PRESIGN_REQUIRED = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-Date",
                     "X-Amz-SignedHeaders", "X-Amz-Expires")


@dataclass(frozen=True)
class ParsedAuth:
    """What a request claims about its signature, parsed and checked without the secret."""

    access_key_id: str
    kind: str  # "header" or "presigned"
    amz_date: str  # 20150830T123600Z, as signed
    scope_date: str  # 20150830
    region: str
    service: str
    signed_headers: tuple[str, ...]  # lowercase, in the order the request lists them
    signature: str
    payload_hash: str  # the last line of the canonical request
    session_token: str | None
    expires: int | None  # X-Amz-Expires of a presigned URL
    signed_headers_raw: str  # the SignedHeaders value exactly as sent (it is signed as sent)
    content_sha256: str | None  # the x-amz-content-sha256 header: says how the body is encoded
    request_time: int  # amz_date as a Unix timestamp
    # the headers as parse_request_auth indexed them (name -> values), and the object they came
    # from: verify_signature reuses the index when it is handed that same object
    header_map: HeaderMap = field(default_factory=dict, repr=False, compare=False)
    headers_source: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def _build(cls, access_key_id: str, kind: str, amz_date: str, scope_date: str, region: str, service: str,
               signed_headers: tuple[str, ...], signature: str, payload_hash: str, session_token: str | None,
               expires: int | None, signed_headers_raw: str, content_sha256: str | None, request_time: int,
               header_map: HeaderMap, headers_source: Any) -> ParsedAuth:
        # A frozen dataclass's __init__ pays one object.__setattr__ per field, a tenth of the
        # whole parse: the fields, in the order declared above, become __dict__ in one step.
        auth = object.__new__(cls)
        _set_attribute(auth, "__dict__", {
            "access_key_id": access_key_id,
            "kind": kind,
            "amz_date": amz_date,
            "scope_date": scope_date,
            "region": region,
            "service": service,
            "signed_headers": signed_headers,
            "signature": signature,
            "payload_hash": payload_hash,
            "session_token": session_token,
            "expires": expires,
            "signed_headers_raw": signed_headers_raw,
            "content_sha256": content_sha256,
            "request_time": request_time,
            "header_map": header_map,
            "headers_source": headers_source,
        })
        return auth

    @property
    def scope(self) -> str:
        """``yyyymmdd/region/service/aws4_request``."""
        return credential_scope(self.scope_date, self.region, self.service)

    @property
    def expires_at(self) -> int | None:
        """Unix time after which a presigned URL is refused."""
        return None if self.expires is None else self.request_time + self.expires


@lru_cache(maxsize=1024)  # on a busy proxy many requests share the same second
def parse_amz_date(value: str) -> int | None:
    """``yyyymmddTHHMMSSZ`` to a Unix timestamp, or None when it isn't exactly that."""
    if len(value) != 16 or value[8] != "T" or value[15] != "Z":
        return None
    digits = value[:8] + value[9:15]
    if not digits.isascii() or not digits.isdigit():
        return None
    try:
        moment = datetime(
            int(value[0:4]), int(value[4:6]), int(value[6:8]),
            int(value[9:11]), int(value[11:13]), int(value[13:15]),
        )
    except ValueError:
        return None
    return (moment - _EPOCH) // _SECOND


def _epoch(now: datetime) -> float:
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    return now.timestamp()


def parse_authorization_header(value: str) -> tuple[str, str, str, str]:
    """Split ``AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...``.

    Returns ``(algorithm, credential, signed_headers, signature)``; components may be separated
    by ``,`` with or without spaces, in any order.
    """
    match = _AUTHORIZATION.fullmatch(value)
    if match is not None:  # the exact layout SDKs send
        return ALGORITHM, match[1], match[2], match[3]
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise SigningError("InvalidRequest", _UNSUPPORTED)
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, eq, item = part.strip().partition("=")
        if not eq or name not in ("Credential", "SignedHeaders", "Signature") or name in fields:
            raise SigningError(
                "AuthorizationHeaderMalformed",
                f"The authorization header is malformed; unexpected component {part.strip()[:64]!r}.",
            )
        fields[name] = item.strip()
    missing = [name for name in ("Credential", "SignedHeaders", "Signature") if not fields.get(name)]
    if missing:
        raise SigningError(
            "AuthorizationHeaderMalformed",
            f"The authorization header is malformed; missing {', '.join(missing)}.",
        )
    return algorithm, fields["Credential"], fields["SignedHeaders"], fields["Signature"]


def _credential_parts(credential: str) -> tuple[str, str, str, str, str] | None:
    if len(credential) <= _CACHED_TEXT_MAX:
        return _cached_credential_parts(credential)
    return _split_credential_parts(credential)


def _split_credential_parts(credential: str) -> tuple[str, str, str, str, str] | None:
    parts = credential.split("/")
    if len(parts) < 5 or not parts[0]:
        return None
    access_key = "/".join(parts[:-4])
    date, region, service, terminator = parts[-4:]
    return access_key, date, region, service, terminator


# the same for every request of a key on a day (a pure function of the text, bounded: entries
# and length, since anyone can send any credential before the key is looked up)
_cached_credential_parts = lru_cache(maxsize=1024)(_split_credential_parts)
_CACHED_TEXT_MAX = 512


def _split_credential(credential: str, code: str, prefix: str) -> tuple[str, str, str, str, str]:
    parts = _cached_credential_parts(credential) if len(credential) <= _CACHED_TEXT_MAX \
        else _split_credential_parts(credential)
    if parts is None:
        raise SigningError(code, f"{prefix} the Credential is mal-formed; "
                                 "expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".")
    return parts


def _check_scope(date: str, region: str, service: str, terminator: str, amz_date: str, *,
                 expected_region: str, expected_service: str, code: str, prefix: str) -> None:
    if len(date) != 8 or not date.isdigit() or date != amz_date[:8]:
        raise SigningError(code, f"{prefix} Invalid credential date {date!r}. Date is not the same as X-Amz-Date.")
    if region != expected_region:
        # S3 names the right region in a <Region> element; SDKs read it and retry there
        raise SigningError(code, f"{prefix} the region {region!r} is wrong; expecting {expected_region!r}",
                           details={"Region": expected_region})
    if service != expected_service:
        raise SigningError(code, f"{prefix} incorrect service {service!r}. This endpoint belongs to {expected_service!r}.")
    if terminator != "aws4_request":
        raise SigningError(code, f"{prefix} incorrect terminal {terminator!r}. This endpoint uses 'aws4_request'.")


def _signed_header_names(raw: str) -> tuple[tuple[str, ...], frozenset[str]] | None:
    """The SignedHeaders list split (lowercase, in the order sent) and as a set; None if malformed."""
    if len(raw) <= _CACHED_TEXT_MAX:
        return _cached_signed_header_names(raw)
    return _split_signed_header_names(raw)


def _split_signed_header_names(raw: str) -> tuple[tuple[str, ...], frozenset[str]] | None:
    names = tuple((raw if raw.islower() else raw.lower()).split(";"))
    if "" in names:
        return None
    return names, frozenset(names)


# a client sends the same SignedHeaders list request after request
_cached_signed_header_names = lru_cache(maxsize=1024)(_split_signed_header_names)


def _check_signed_header_coverage(signed: tuple[str, ...], header_map: HeaderMap,
                                  signed_set: frozenset[str] | None = None) -> None:
    if signed_set is None:
        signed_set = frozenset(signed)
    if "host" not in signed_set:
        raise SigningError("AccessDenied", "The host header must be signed.", details={"HeadersNotSigned": "host"})
    # the headers present but not signed (set difference in C; usually user-agent, accept-encoding,
    # connection, authorization), of which no x-amz-* one may be
    unsigned = [
        name for name in header_map.keys() - signed_set
        if name[:6] == "x-amz-" and name != "x-amz-content-sha256"
    ]
    if unsigned:
        names = ", ".join(sorted(unsigned))
        raise SigningError(
            "AccessDenied",
            f"There were headers present in the request which were not signed: {names}",
            details={"HeadersNotSigned": names},
        )
    if not signed_set <= header_map.keys():
        for name in signed:  # in the order signed, so the message names the first one
            if name not in header_map and name != "expect":
                raise SigningError("AccessDenied", f"The signed header {name!r} is missing from the request.")


def _single(header_map: HeaderMap, name: str) -> str | None:
    values = header_map.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise SigningError("InvalidRequest", f"The {name} header may only appear once.")
    return values[0]


def _auth_query_params(raw_query: str) -> tuple[list[tuple[str, str]], bool]:
    """The decoded query parameters that can carry credentials (the rest are only signed), and
    whether one of them makes the request a SigV4 presigned one."""
    params = []
    presigned = False
    for part in raw_query.split("&"):
        if part.startswith(("X-Amz-", "AWSAccessKeyId=", "Signature=")):
            name, _, value = part.partition("=")
            if "%" in value or "+" in value:
                value = _form_decode(value)
            params.append((name, value))
            if not presigned and name in _PRESIGN_KEYS:
                presigned = True
    return params, presigned


def _valid_payload_hash(value: str) -> bool:
    return value in PAYLOAD_HASH_KEYWORDS or (len(value) == 64 and _HEX64.fullmatch(value) is not None)


def parse_request_auth(
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | Any,
    *,
    now: datetime,
    region: str,
    service: str = "s3",
    max_skew_seconds: int = 900,
) -> ParsedAuth | None:
    """Parse and check the request's Signature V4 credentials; None for an anonymous request.

    ``raw_path`` and ``raw_query`` are exactly as received; ``headers`` is a list of
    ``(name, value)`` pairs or a (multi)dict; ``now`` is the current time (aware, or naive UTC).
    Raises ``SigningError`` with S3's code when the request is malformed, too old or not covered.
    """
    del method, raw_path  # the signature covers them: verify_signature uses them
    header_map = collect_headers(headers)
    authorization = header_map.get("authorization")
    # decode the query only when it may carry credentials (the common request has none)
    if raw_query and ("X-Amz-" in raw_query or "AWSAccessKeyId" in raw_query):
        query, presigned = _auth_query_params(raw_query)
    else:
        query, presigned = [], False
    if authorization is None and not presigned:
        names = {name for name, _ in query}
        if "AWSAccessKeyId" in names and "Signature" in names:  # a SigV2 presigned URL
            raise SigningError("InvalidRequest", _UNSUPPORTED)
        return None
    if authorization is not None and presigned:
        raise SigningError(
            "InvalidRequest",
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the "
            "Authorization header should be specified.",
        )
    if authorization is not None:
        return _parse_header_auth(header_map, authorization, now=now, region=region, service=service,
                                  max_skew_seconds=max_skew_seconds, headers_source=headers)
    return _parse_presigned(header_map, query, now=now, region=region, service=service,
                            max_skew_seconds=max_skew_seconds, headers_source=headers)


def _parse_header_auth(header_map: HeaderMap, authorization: list[str], *, now: datetime, region: str,
                       service: str, max_skew_seconds: int, headers_source: Any) -> ParsedAuth:
    if len(authorization) != 1:
        raise SigningError("InvalidRequest", "The Authorization header may only appear once.")
    _, credential, signed_raw, signature = parse_authorization_header(authorization[0])
    code, prefix = "AuthorizationHeaderMalformed", "The authorization header is malformed;"
    access_key, date, cred_region, cred_service, terminator = _split_credential(credential, code, prefix)

    amz_dates = header_map.get("x-amz-date")
    if amz_dates:
        if len(amz_dates) > 1:
            raise SigningError("InvalidRequest", "The x-amz-date header may only appear once.")
        amz_date: str | None = amz_dates[0]
        request_time = parse_amz_date(amz_date)
    else:
        request_time, amz_date = _from_http_date(_single(header_map, "date"))
    if request_time is None or amz_date is None:
        raise SigningError("AccessDenied", "AWS authentication requires a valid Date or x-amz-date header")
    if not (date == amz_date[:8] and cred_region == region and cred_service == service
            and terminator == "aws4_request" and len(date) == 8 and date.isdigit()):
        _check_scope(date, cred_region, cred_service, terminator, amz_date, expected_region=region,
                     expected_service=service, code=code, prefix=prefix)
    if len(signature) != 64 or _HEX64.fullmatch(signature) is None:
        raise SigningError(code, f"{prefix} the Signature must be 64 lowercase hexadecimal digits.")
    split = _signed_header_names(signed_raw)
    if split is None:
        raise SigningError(code, f"{prefix} SignedHeaders {signed_raw!r} is malformed.")
    signed, signed_set = split

    current = now.timestamp() if now.tzinfo is not None else _epoch(now)
    if abs(current - request_time) > max_skew_seconds:
        server_time = datetime.fromtimestamp(int(current), timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        raise SigningError(
            "RequestTimeTooSkewed",
            "The difference between the request time and the current time is too large.",
            details={"RequestTime": amz_date, "ServerTime": server_time,
                     "MaxAllowedSkewMilliseconds": str(max_skew_seconds * 1000)},
        )

    content_sha256 = _single(header_map, "x-amz-content-sha256")
    if content_sha256 is None:
        raise SigningError("InvalidRequest", "Missing required header for this request: x-amz-content-sha256")
    if not _valid_payload_hash(content_sha256):
        raise SigningError(
            "InvalidArgument",
            "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, "
            "STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or a "
            "lowercase hex SHA-256.",
        )
    _check_signed_header_coverage(signed, header_map, signed_set)
    token = _single(header_map, "x-amz-security-token") if "x-amz-security-token" in header_map else None
    # the field order of ParsedAuth; payload_hash and content_sha256 are both the header's value
    return ParsedAuth._build(access_key, "header", amz_date, date, cred_region, cred_service, signed, signature,
                             content_sha256, token, None, signed_raw, content_sha256, request_time,
                             header_map, headers_source)


def _from_http_date(value: str | None) -> tuple[int | None, str | None]:
    if not value:
        return None, None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None, None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    moment = moment.astimezone(timezone.utc)
    return int(moment.timestamp()), moment.strftime("%Y%m%dT%H%M%SZ")


def _parse_presigned(header_map: HeaderMap, query: list[tuple[str, str]], *, now: datetime, region: str,
                     service: str, max_skew_seconds: int, headers_source: Any) -> ParsedAuth:
    code, prefix = "AuthorizationQueryParametersError", "Error parsing the X-Amz-Credential parameter;"
    params: dict[str, str] = {}
    for name, value in query:
        if name.startswith("X-Amz-"):
            if name in params:
                raise SigningError(code, f"The {name} query parameter may only appear once.")
            params[name] = value
    if not all(map(params.get, _PRESIGN_REQUIRED)):  # each present and not empty
        raise SigningError(code, _QUERY_PARAMS_REQUIRED)
    if params["X-Amz-Algorithm"] != ALGORITHM:
        raise SigningError(code, "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"")
    access_key, date, cred_region, cred_service, terminator = _split_credential(
        params["X-Amz-Credential"], code, prefix)
    amz_date = params["X-Amz-Date"]
    request_time = parse_amz_date(amz_date)
    if request_time is None:
        raise SigningError(code, "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
    if not (date == amz_date[:8] and cred_region == region and cred_service == service
            and terminator == "aws4_request" and len(date) == 8 and date.isdigit()):
        _check_scope(date, cred_region, cred_service, terminator, amz_date, expected_region=region,
                     expected_service=service, code=code, prefix=prefix)
    expires_raw = params["X-Amz-Expires"]
    if not (expires_raw.isascii() and expires_raw.isdigit()):
        raise SigningError(code, "X-Amz-Expires should be a number")
    expires = int(expires_raw)
    if expires > MAX_PRESIGN_EXPIRES:
        raise SigningError(code, "X-Amz-Expires must be less than a week (in seconds) that is 604800")
    signature = params["X-Amz-Signature"]
    if _HEX64.fullmatch(signature) is None:
        raise SigningError(code, "X-Amz-Signature must be 64 lowercase hexadecimal digits.")
    signed_raw = params["X-Amz-SignedHeaders"]
    split = _signed_header_names(signed_raw)
    if split is None:
        raise SigningError(code, f" SignedHeaders {signed_raw!r} is malformed.")
    signed, signed_set = split

    current = now.timestamp() if now.tzinfo is not None else _epoch(now)
    # X-Amz-Expires=0: valid for no time at all, so expired when it arrives (S3 answers 403, not 400)
    if current > request_time + expires or expires == 0:
        raise SigningError("AccessDenied", "Request has expired",
                           details={"X-Amz-Expires": expires_raw, "Expires": amz_date})
    if request_time - current > max_skew_seconds:
        raise SigningError("AccessDenied", "Request is not valid yet")

    payload_hash = params.get("X-Amz-Content-Sha256", UNSIGNED_PAYLOAD)
    if not _valid_payload_hash(payload_hash):
        raise SigningError(code, "X-Amz-Content-Sha256 is not a valid payload hash.")
    content_sha256 = _single(header_map, "x-amz-content-sha256")
    if content_sha256 is not None and not _valid_payload_hash(content_sha256):
        raise SigningError("InvalidArgument", "x-amz-content-sha256 is not a valid payload hash.")
    if "X-Amz-Content-Sha256" in params and content_sha256 is not None and content_sha256 != payload_hash:
        # The URL pins the body's hash; an unsigned header must not switch the check off or change it.
        raise SigningError("XAmzContentSHA256Mismatch",
                           "The x-amz-content-sha256 header must equal the X-Amz-Content-Sha256 the URL was signed with.")
    _check_signed_header_coverage(signed, header_map, signed_set)
    # the field order of ParsedAuth; without the header, the body is described by the signed payload hash
    return ParsedAuth._build(access_key, "presigned", amz_date, date, cred_region, cred_service, signed, signature,
                             payload_hash, params.get("X-Amz-Security-Token"), expires, signed_raw,
                             content_sha256 if content_sha256 is not None else payload_hash, request_time,
                             header_map, headers_source)
