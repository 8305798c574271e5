"""Step 1b: which S3 operation is this request? Recognition over the one table, ``policy.operations``.

``classify`` is pure: (method, bucket, key, query, headers) -> Operation. The table's rows are sorted
once, at import, into dicts keyed by (method, scope); a request costs a dict lookup and, when it has a
query, a membership test per candidate row, as the hand-written ``if``s it replaces. Anything not in
the table answers ``MethodNotAllowed`` or ``NotImplemented``; bucket configuration is wio's business
and answers a clear error. STS is recognised before the path is read (``is_sts``).
"""
from __future__ import annotations

from typing import Mapping

from policy.operations import OPERATIONS, Operation, Scope, Strategy
from proxy.errors import S3Error

__all__ = ["Operation", "classify", "is_sts", "BUCKET_CONFIG_SUBRESOURCES", "BUCKET_VIEWS", "UNSUPPORTED", "STS"]

# Bucket configuration wio manages itself: never passed through to a backend.
BUCKET_CONFIG_SUBRESOURCES = frozenset({
    "policy", "acl", "lifecycle", "cors", "notification", "replication", "encryption", "website", "logging",
    "tagging", "requestPayment", "object-lock", "ownershipControls", "publicAccessBlock", "analytics",
    "inventory", "metrics", "intelligent-tiering", "accelerate", "policyStatus",
})
# Object subresources wio does not offer.
_OBJECT_UNSUPPORTED = frozenset({"acl", "retention", "legal-hold", "restore", "select", "torrent"})
_BUCKET_CONFIG_ORDER = tuple(sorted(BUCKET_CONFIG_SUBRESOURCES))
_OBJECT_UNSUPPORTED_ORDER = tuple(sorted(_OBJECT_UNSUPPORTED))
_COPY = "x-amz-copy-source"

# A bucket-level request naming a subresource wio does not offer: authenticated and authorized like any
# request on the bucket (S3's order: a bad signature or no access answers first), then NotImplemented.
UNSUPPORTED = Operation("Unsupported", "", Scope.BUCKET, None, Strategy.OBJECT, "")
STS = next(op for op in OPERATIONS if op.scope is Scope.ROOT)

# (method, scope) -> (rows tried before unsupported subresources are refused, rows tried after), in table order
_ROWS: dict[tuple[str, Scope], tuple[tuple[Operation, ...], tuple[Operation, ...]]] = {}
for _op in OPERATIONS:
    _early, _late = _ROWS.get((_op.method, _op.scope), ((), ()))
    _ROWS[(_op.method, _op.scope)] = (_early + (_op,), _late) if _op.before_refusals else (_early, _late + (_op,))
_SERVICE = {op.method: op for op in OPERATIONS if op.scope is Scope.SERVICE}
# The common case, an object request without a query: method -> (the operation, the one with x-amz-copy-source)
_PLAIN_OBJECT = {
    method: (next(op for op in rows if op.query is None and op.header is None),
             next(op for op in rows if op.query is None))
    for (method, scope), (_, rows) in _ROWS.items() if scope is Scope.OBJECT and any(op.query is None for op in rows)
}
BUCKET_VIEWS = {op.query: op for op in _ROWS[("GET", Scope.BUCKET)][0] if op.query is not None}


def _matches(op: Operation, query: Mapping[str, str], headers: Mapping[str, str]) -> bool:
    if op.query is not None:
        if op.query_value is None:
            if op.query not in query:
                return False
        elif query.get(op.query) != op.query_value:
            return False
        if op.query_also is not None and op.query_also not in query:
            return False
    if op.header is not None:
        value = headers.get(op.header)
        if value is None or op.header_prefix and not value.lower().startswith(op.header_prefix):
            return False
    return True


def is_sts(method: str, path: str, headers: Mapping[str, str]) -> bool:
    """STS: recognised on the root path whatever the host, before the path is read as an address."""
    return method == STS.method and path == "/" and _matches(STS, {}, headers)


def _unsupported(sub: str, bucket_level: bool) -> S3Error:
    if bucket_level:
        return S3Error("NotImplemented", f"Bucket configuration ('{sub}') is managed by wio, not through the S3 API")
    return S3Error("NotImplemented", f"The '{sub}' object subresource is not supported by wio")


def _refuse(method: str, scope: Scope, query: Mapping[str, str]) -> None:
    """Subresources wio does not offer, and malformed multipart steps."""
    if scope is Scope.BUCKET:
        if type(query) is not dict or not BUCKET_CONFIG_SUBRESOURCES.isdisjoint(query):  # (a dict's lookups are exact)
            for sub in _BUCKET_CONFIG_ORDER:
                if sub in query:
                    raise _unsupported(sub, True)
        if method in ("PUT", "DELETE"):
            # Only the bare bucket is created or deleted; any other subresource (versioning, …) is not ours.
            extra = sorted(name for name in query if name != "x-id")
            if extra:
                raise _unsupported(extra[0], True)
        return
    if type(query) is not dict or not _OBJECT_UNSUPPORTED.isdisjoint(query):
        for sub in _OBJECT_UNSUPPORTED_ORDER:
            if sub in query:
                raise _unsupported(sub, False)
    if method == "PUT" and ("uploadId" in query) != ("partNumber" in query):
        raise S3Error("InvalidRequest", "UploadPart needs both partNumber and uploadId")


def classify(method: str, bucket: str | None, key: str | None, query: Mapping[str, str],
             headers: Mapping[str, str]) -> Operation:
    if bucket is None:
        op = _SERVICE.get(method)
        if op is None:
            raise S3Error("MethodNotAllowed")
        return op
    if key is None:
        scope = Scope.BUCKET
    else:
        if not query:  # the common case: no subresource at all
            pair = _PLAIN_OBJECT.get(method)
            if pair is not None:
                plain, copy = pair
                return copy if copy is not plain and _COPY in headers else plain
        scope = Scope.OBJECT
    early, late = _ROWS.get((method, scope), ((), ()))
    for op in early:
        if _matches(op, query, headers):
            return op
    _refuse(method, scope, query)
    for op in late:
        if _matches(op, query, headers):
            return op
    if scope is Scope.OBJECT and method == "POST":
        raise S3Error("NotImplemented", "This POST operation on an object is not supported")
    raise S3Error("MethodNotAllowed")
