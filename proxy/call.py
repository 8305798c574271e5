"""The authorized call: everything a handler knows about the request once steps 1-3 have passed."""
from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import TypeVar

from aiohttp import BodyPartReader, web

from policy.decide import ListingFilter, WorkspaceView, decide_listing, decide_object
from policy.operations import Strategy
from proxy.authz import Caller, Target
from proxy.errors import S3Error
from proxy.headers import request_headers
from proxy.operations import Operation
from signing import ParsedAuth, PostPolicyResult, SigningContext

_T = TypeVar("_T")

__all__ = ["Call", "CALL", "PostForm", "StsForm", "FORWARDED_HEADERS", "forwarded_headers"]

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


@dataclass(frozen=True, slots=True)
class PostForm:
    """A browser upload's form as the POST policy door verified it (proxy/post_object.py)."""
    fields: dict[str, str]
    file: BodyPartReader                   # the file part: read by the handler, after the door
    policy: PostPolicyResult


@dataclass(frozen=True, slots=True)
class StsForm:
    """An STS action as its door authenticated it (proxy/sts.py)."""
    action: str
    form: dict[str, str]
    api_headers: dict[str, str]            # how the proxy acts for the caller at the admin API
    result_xml: str = ""                   # the action's own result elements (SubjectFromWebIdentityToken)


@dataclass(slots=True)
class Call:
    request: web.Request
    op: Operation
    bucket: str | None
    key: str | None
    params: list[tuple[str, str]]          # decoded query parameters, auth parameters removed
    caller: Caller
    auth: ParsedAuth | None                # None for a POST policy upload (proxy/post_object.py)
    signing_ctx: SigningContext | None
    target: Target | None = None
    source: Target | None = None           # CopyObject / UploadPartCopy source workspace
    source_key: str | None = None
    source_version: str | None = None
    listing: ListingFilter | None = None
    decided_by: str = ""
    visible: list[tuple[WorkspaceView, str]] = field(default_factory=list)  # ListBuckets: (workspace, created)
    post: PostForm | None = None           # PostObject: the verified form, its file part still unread
    sts: StsForm | None = None             # STS: the action's form and how to act for the caller at the API
    # for proxy/accounting.py
    bytes_in: int = 0
    bytes_out: int = 0
    etag: str = ""
    content_type: str = ""
    deleted_keys: list[str] = field(default_factory=list)

    def param(self, name: str, default: str | None = None) -> str | None:
        for k, v in self.params:
            if k == name:
                return v
        return default

    def _given(self, value: _T | None, what: str) -> _T:
        """What authorize() set for this operation; its absence is a bug, never the client's error."""
        if value is None:
            raise RuntimeError(f"{self.op.name} has no {what}")
        return value

    def authorized_target(self) -> Target:
        """The workspace the request was authorized on: authorize() sets it for every operation on a bucket."""
        return self._given(self.target, "authorized workspace")

    def object_key(self) -> str:
        """The key of an object operation (classify() gives every one a key)."""
        return self._given(self.key, "object key")

    def authorized_source(self) -> tuple[Target, str]:
        """The copy source's workspace and key: authorize() sets both for CopyObject and UploadPartCopy."""
        return self._given(self.source, "copy source"), self._given(self.source_key, "copy source")

    def authorized_post(self) -> PostForm:
        """A browser upload's verified form: authorize_post() sets it for PostObject."""
        return self._given(self.post, "verified form")

    def authorized_sts(self) -> StsForm:
        """An STS action's form: authorize_sts() sets it."""
        return self._given(self.sts, "STS form")

    def required_param(self, name: str) -> str:
        """A query parameter classify() required for this operation (``uploadId`` of a multipart step)."""
        return self._given(self.param(name), name)

    def decide(self, prefix: str, denied: str | None = None) -> str:
        """The workspace decision of an operation on the authorized target, by its strategy: what allowed
        it, or AccessDenied (with ``denied`` as the message, else the decision's reason). A listing
        keeps its filter in ``listing``; DeleteObjects ("per-key") is decided key by key by its handler."""
        op, grants = self.op, self.authorized_target().grants
        if op.strategy is Strategy.PER_KEY:
            return "per-key"
        if op.permission is None:
            raise RuntimeError(f"{op.name} ({op.strategy.value}) names no permission")
        if op.strategy is Strategy.LISTING:
            decision, self.listing = decide_listing(grants, op.permission, prefix)
        else:   # OBJECT, COPY_SOURCE (the source is decided by authorize)
            decision = decide_object(grants, op.permission, self.key or "")
        if not decision.allowed:
            raise S3Error("AccessDenied", denied or f"Access Denied ({decision.reason})")
        return decision.reason

    @property
    def headers(self) -> dict[str, str]:
        """The request's headers as parsed at the front door (lower-cased names, one value each)."""
        return request_headers(self.request)

    @property
    def physical_key(self) -> str:
        return self.authorized_target().ws.prefix + (self.key or "")


CALL = web.RequestKey("call", Call)


def forwarded_headers(call: Call) -> dict[str, str]:
    signed = set(call.auth.signed_headers) if call.auth is not None else set()
    out: dict[str, str] = {}
    for lname, value in call.headers.items():
        if lname in FORWARDED_HEADERS:
            if lname == "content-encoding":
                value = ",".join(v.strip() for v in value.split(",") if v.strip().lower() != "aws-chunked")
                if not value:
                    continue
            out[lname] = _ascii_value(lname, value)
        elif lname.startswith("x-amz-") and lname in signed and lname not in _NOT_FORWARDED:
            out[lname] = _ascii_value(lname, value)
    return out


def _ascii_value(name: str, value: str) -> str:
    """What the node gets for a header value: HTTP header values are ASCII. User metadata may hold any
    UTF-8 text: S3 stores and returns it RFC 2047-encoded (UsingMetadata.html), so it goes to the node
    that way; any other header with non-ASCII text is refused."""
    if value.isascii():
        return value
    if name.startswith("x-amz-meta-"):
        return "=?UTF-8?B?" + base64.b64encode(value.encode()).decode() + "?="
    raise S3Error("InvalidArgument", f"The {name} header must be US-ASCII; only x-amz-meta-* values may be UTF-8.")
