"""Browser-based uploads: POST object with a Signature V4 signed policy.

Follows "Authenticating Requests in Browser-Based Uploads Using POST (AWS Signature Version 4)"
(sigv4-UsingHTTPPOST.html) and "Creating a POST Policy" (sigv4-HTTPPOSTConstructPolicy.html) in
the S3 API reference. The form carries a base64 JSON policy (an expiration and a list of
conditions) and ``x-amz-signature`` = hex HMAC-SHA256(signing key, the base64 policy text).

Like header auth, in two steps: ``parse_post_policy`` reads the form fields without the secret
(algorithm, credential scope, date, the policy document and its expiration);
``verify_post_policy`` checks the signature with the secret and then every condition against the
form fields and the request's bucket. Conditions: ``{"field": "value"}`` (exact match),
``["eq", "$field", "value"]``, ``["starts-with", "$field", "prefix"]`` (for Content-Type each
comma-separated value must match) and ``["content-length-range", min, max]``, which can't be
checked before the file streams, so it is returned for the caller to enforce. Every form field
must be covered by a condition, except ``x-amz-signature``, ``file``, ``policy`` and ``x-ignore-*``.

The ``key`` field may contain ``${filename}``: substitute it before calling ``verify_post_policy``
if conditions should see the final key (S3 checks the key after substitution).
"""
from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .auth import parse_amz_date
from .errors import SigningError
from .keys import ALGORITHM, credential_scope, derive_signing_key, signature

__all__ = ["PostPolicy", "PostPolicyResult", "parse_post_policy", "verify_post_policy"]

_EXEMPT = frozenset({"x-amz-signature", "file", "policy"})
_MAX_POLICY_BYTES = 20 * 1024


@dataclass(frozen=True, slots=True)
class PostPolicy:
    """A parsed POST form's credentials and policy, not yet checked against the secret."""

    access_key_id: str
    amz_date: str
    scope_date: str
    region: str
    service: str
    signature: str
    session_token: str | None
    policy_text: str  # the base64 policy as sent: it is what was signed
    expiration: datetime
    conditions: tuple[tuple[str, Any, Any], ...]  # ("eq"|"starts-with", field, value) or ("content-length-range", lo, hi)
    fields: tuple[tuple[str, str], ...]  # lowercase name, value

    @property
    def scope(self) -> str:
        return credential_scope(self.scope_date, self.region, self.service)


@dataclass(frozen=True, slots=True)
class PostPolicyResult:
    """What the caller still has to enforce after a successful verification."""

    access_key_id: str
    session_token: str | None
    content_length_range: tuple[int, int] | None  # enforce while the file streams
    key: str | None

    def check_size(self, size: int, *, final: bool) -> None:
        """Enforce content-length-range: call with the bytes received so far as the file streams
        (``final=False``: refuses as soon as it is too large) and with the total at the end."""
        if self.content_length_range is None:
            return
        low, high = self.content_length_range
        if size > high:
            raise SigningError("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size",
                               details={"MaxSizeAllowed": str(high)})
        if final and size < low:
            raise SigningError("EntityTooSmall", "Your proposed upload is smaller than the minimum allowed size",
                               details={"MinSizeAllowed": str(low)})


def _denied(message: str) -> SigningError:
    return SigningError("AccessDenied", f"Invalid according to Policy: {message}")


def _invalid_policy(message: str) -> SigningError:
    return SigningError("InvalidPolicyDocument", f"Invalid Policy: {message}")


# "The date must be in ISO 8601 UTC format" (sigv4-HTTPPOSTConstructPolicy.html): 2007-12-01T12:00:00.000Z
_EXPIRATION = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?Z")


def _parse_expiration(value: object) -> datetime:
    if not isinstance(value, str) or _EXPIRATION.fullmatch(value) is None:
        raise _invalid_policy(f"Invalid 'expiration' value: {value!r} (ISO 8601 UTC: 2007-12-01T12:00:00.000Z)")
    try:
        moment = datetime.fromisoformat(value[:19])
    except ValueError:
        raise _invalid_policy(f"Invalid 'expiration' value: {value!r}") from None
    return moment.replace(tzinfo=timezone.utc)


def _field_name(value: object) -> str:
    if not isinstance(value, str) or not value.startswith("$") or len(value) < 2:
        raise _invalid_policy(f"condition field must be a string starting with '$', got {value!r}")
    return value[1:].lower()


def _parse_conditions(raw: object) -> tuple[tuple[str, Any, Any], ...]:
    if not isinstance(raw, list):
        raise _invalid_policy("conditions must be a list.")
    conditions: list[tuple[str, Any, Any]] = []
    for item in raw:
        if isinstance(item, dict):
            if len(item) != 1:
                raise _invalid_policy("an exact-match condition must have exactly one field.")
            ((name, value),) = item.items()
            if not isinstance(value, str):
                raise _invalid_policy(f"condition value for {name!r} must be a string.")
            conditions.append(("eq", str(name).lower(), value))
        elif isinstance(item, list) and item and isinstance(item[0], str):
            operator = item[0].lower()
            if operator in ("eq", "starts-with"):
                if len(item) != 3 or not isinstance(item[2], str):
                    raise _invalid_policy(f"condition {item!r} must be [op, \"$field\", \"value\"].")
                conditions.append((operator, _field_name(item[1]), item[2]))
            elif operator == "content-length-range":
                if len(item) != 3:
                    raise _invalid_policy("content-length-range takes a minimum and a maximum.")
                try:
                    low, high = int(item[1]), int(item[2])
                except (TypeError, ValueError):
                    raise _invalid_policy("content-length-range bounds must be integers.") from None
                if low < 0 or high < low:
                    raise _invalid_policy("content-length-range bounds are out of order.")
                conditions.append(("content-length-range", low, high))
            else:
                raise _invalid_policy(f"unknown condition operator {item[0]!r}.")
        else:
            raise _invalid_policy(f"condition {item!r} is neither an object nor a list.")
    return tuple(conditions)


def parse_post_policy(fields: Mapping[str, str], *, now: datetime, region: str,
                      service: str = "s3") -> PostPolicy:
    """Read the form's auth fields and policy (no secret needed). ``fields`` excludes the file.

    Raises ``SigningError``: ``InvalidRequest`` for SigV2 or another algorithm,
    ``InvalidArgument`` for missing or inconsistent auth fields, ``InvalidPolicyDocument`` for a
    malformed policy, ``AccessDenied`` for an expired one.
    """
    form = {name.lower(): value for name, value in fields.items()}
    if "awsaccesskeyid" in form or ("signature" in form and "x-amz-signature" not in form):
        raise SigningError("InvalidRequest", "The authorization mechanism you have provided is not "
                                             "supported. Please use AWS4-HMAC-SHA256.")
    missing = [name for name in ("policy", "x-amz-algorithm", "x-amz-credential", "x-amz-date",
                                 "x-amz-signature") if not form.get(name)]
    if missing:
        raise SigningError("InvalidArgument", f"Bucket POST must contain the field(s) {', '.join(missing)}.")
    if form["x-amz-algorithm"] != ALGORITHM:
        raise SigningError("InvalidRequest", "The authorization mechanism you have provided is not "
                                             "supported. Please use AWS4-HMAC-SHA256.")
    parts = form["x-amz-credential"].split("/")
    if len(parts) < 5 or not parts[0]:
        raise SigningError("InvalidArgument", "x-amz-credential is malformed.")
    access_key = "/".join(parts[:-4])
    date, cred_region, cred_service, terminator = parts[-4:]
    amz_date = form["x-amz-date"]
    if parse_amz_date(amz_date) is None:
        raise SigningError("InvalidArgument", "x-amz-date must be in the ISO8601 basic format yyyyMMdd'T'HHmmss'Z'.")
    if date != amz_date[:8]:
        raise SigningError("InvalidArgument", "The credential date is not the same as x-amz-date.")
    if cred_region != region:
        raise SigningError("InvalidArgument", f"The region {cred_region!r} is wrong; expecting {region!r}.")
    if cred_service != service or terminator != "aws4_request":
        raise SigningError("InvalidArgument", "x-amz-credential must be scoped to s3/aws4_request.")
    sig = form["x-amz-signature"]
    if len(sig) != 64 or any(c not in "0123456789abcdef" for c in sig):
        raise SigningError("InvalidArgument", "x-amz-signature must be 64 lowercase hexadecimal digits.")

    policy_text = form["policy"]
    if len(policy_text) > _MAX_POLICY_BYTES:
        raise _invalid_policy("the policy is too large.")
    try:
        document = json.loads(base64.b64decode(policy_text.encode("ascii"), validate=True))
    except (binascii.Error, UnicodeError, ValueError):
        raise _invalid_policy("the policy is not base64-encoded JSON.") from None
    if not isinstance(document, dict) or "expiration" not in document or "conditions" not in document:
        raise _invalid_policy("the policy must have an expiration and conditions.")
    expiration = _parse_expiration(document["expiration"])
    conditions = _parse_conditions(document["conditions"])
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    if now > expiration:
        raise _denied("Policy expired.")
    return PostPolicy(
        access_key_id=access_key,
        amz_date=amz_date,
        scope_date=date,
        region=cred_region,
        service=cred_service,
        signature=sig,
        session_token=form.get("x-amz-security-token"),
        policy_text=policy_text,
        expiration=expiration,
        conditions=conditions,
        fields=tuple(form.items()),
    )


def verify_post_policy(policy: PostPolicy, secret_access_key: str, *, bucket: str) -> PostPolicyResult:
    """Check the policy signature, then every condition against the form fields and ``bucket``.

    Raises ``SignatureDoesNotMatch`` or ``AccessDenied`` (a condition failed, a field is not
    covered by any condition, or the form names another bucket).
    """
    key = derive_signing_key(secret_access_key, policy.scope_date, policy.region, policy.service)
    if not hmac.compare_digest(signature(key, policy.policy_text), policy.signature):
        raise SigningError(
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        )
    form = dict(policy.fields)
    form.pop("file", None)
    bucket_sent = "bucket" in form
    if form.get("bucket", bucket) != bucket:
        raise _denied("the form's bucket field does not match the bucket of the request.")
    form["bucket"] = bucket
    covered = set()
    length_range = None
    for condition in policy.conditions:
        operator = condition[0]
        if operator == "content-length-range":
            length_range = (condition[1], condition[2])
            continue
        _, name, expected = condition
        covered.add(name)
        actual = form.get(name, "")
        if operator == "eq":
            ok = actual == expected
        elif name == "content-type":
            ok = all(part.strip().startswith(expected) for part in actual.split(","))
        else:
            ok = actual.startswith(expected)
        if not ok:
            shown = json.dumps([operator, "$" + name, expected])
            raise _denied(f"Policy Condition failed: {shown}")
    extra = sorted(
        name for name in form
        if name not in covered and name not in _EXEMPT and not name.startswith("x-ignore-")
        and (name != "bucket" or bucket_sent)
    )
    if extra:
        raise _denied(f"Extra input fields: {', '.join(extra)}")
    return PostPolicyResult(
        access_key_id=policy.access_key_id,
        session_token=policy.session_token,
        content_length_range=length_range,
        key=form.get("key"),
    )
