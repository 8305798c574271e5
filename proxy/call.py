"""The authorized call: everything a handler knows about the request once steps 1-3 have passed."""
from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from policy.decide import ListingFilter
from proxy.authz import Caller, Target
from proxy.headers import request_headers
from proxy.operations import Operation

__all__ = ["Call", "FORWARDED_HEADERS", "forwarded_headers"]

# Standard request headers that carry object semantics; x-amz-* ones are forwarded when signed.
FORWARDED_HEADERS = frozenset({
    "content-type", "content-md5", "cache-control", "content-disposition", "content-encoding", "content-language",
    "expires", "range", "if-match", "if-none-match", "if-modified-since", "if-unmodified-since",
})
# x-amz-* headers that belong to the client's signature or body encoding, not to the backend request.
_NOT_FORWARDED = frozenset({
    "x-amz-date", "x-amz-content-sha256", "x-amz-security-token", "x-amz-decoded-content-length",
    "x-amz-trailer", "x-amz-sdk-checksum-algorithm", "x-amz-copy-source", "x-amz-acl", "x-amz-expected-bucket-owner",
    "x-amz-source-expected-bucket-owner", "x-amz-request-payer",
})


@dataclass(slots=True)
class Call:
    request: web.Request
    op: Operation
    bucket: str | None
    key: str | None
    params: list[tuple[str, str]]          # decoded query parameters, auth parameters removed
    caller: Caller
    auth: object                           # signing.ParsedAuth
    signing_ctx: object                    # signing.SigningContext
    target: Target | None = None
    source: Target | None = None           # CopyObject / UploadPartCopy source workspace
    source_key: str | None = None
    source_version: str | None = None
    listing: ListingFilter | None = None
    decided_by: str = ""
    extra: dict = field(default_factory=dict)

    def param(self, name: str, default: str | None = None) -> str | None:
        for k, v in self.params:
            if k == name:
                return v
        return default

    @property
    def headers(self) -> dict[str, str]:
        """The request's headers as parsed at the front door (lower-cased names, one value each)."""
        return request_headers(self.request)

    @property
    def physical_key(self) -> str:
        return self.target.ws.prefix + (self.key or "")


def forwarded_headers(call: Call) -> dict[str, str]:
    signed = set(call.auth.signed_headers)
    out: dict[str, str] = {}
    for lname, value in call.headers.items():
        if lname in FORWARDED_HEADERS:
            if lname == "content-encoding":
                value = ",".join(v.strip() for v in value.split(",") if v.strip().lower() != "aws-chunked")
                if not value:
                    continue
            out[lname] = value
        elif lname.startswith("x-amz-") and lname in signed and lname not in _NOT_FORWARDED:
            out[lname] = value
    return out
