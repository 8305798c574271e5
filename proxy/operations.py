"""Step 1b: which S3 operation is this request? Recognition over the one table, ``policy.operations``.

``classify`` is pure: (method, bucket, key, query, headers) -> Operation. The table's rows are sorted
once, at import, into one dict per scope keyed by method; a request costs a dict lookup and, when it
has a query, a membership test per candidate row, as the hand-written ``if``s it replaced (an object
request without a query: a string comparison or one lookup). No regular expression, no call per row. Anything not in
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
_BUCKET, _OBJECT = Scope.BUCKET, Scope.OBJECT

# A bucket-level request naming a subresource wio does not offer: authenticated and authorized like any
# request on the bucket (S3's order: a bad signature or no access answers first), then NotImplemented.
UNSUPPORTED = Operation("Unsupported", "", Scope.BUCKET, None, Strategy.OBJECT, "")
STS = next(op for op in OPERATIONS if op.scope is Scope.ROOT)


class _Rows:
    """The rows of one (method, scope) in table order: first those a query parameter selects (``keyed``:
    the parameter, its value, its companion parameter, a header that must be present, the row), then those
    without one (``fallback``: a header condition, or nothing). The table keeps rows with a query parameter
    before those without (checked here), so this is first-match-in-order, with no call per row."""
    __slots__ = ("keyed", "fallback")

    def __init__(self, rows: tuple[Operation, ...]):
        self.keyed = tuple((op.query, op.query_value, op.query_also, op.header, op.query_alone, op)
                           for op in rows if op.query is not None)
        self.fallback = tuple(op for op in rows if op.query is None)
        if rows[:len(self.keyed)] != tuple(row[-1] for row in self.keyed) or \
                any(op.header_prefix for op in rows if op.query is not None):
            raise ValueError(f"policy.operations: rows this recognition cannot order: {rows}")

    def first(self, query: Mapping[str, str], headers: Mapping[str, str]) -> Operation | None:
        if query:
            for name, value, also, header, alone, op in self.keyed:
                if name in query and (value is None or query[name] == value) and (also is None or also in query) \
                        and (header is None or header in headers) and (not alone or _alone(name, query)):
                    return op
        for op in self.fallback:
            if op.header is None or _matches(op, query, headers):
                return op
        return None


def _grouped(scope: Scope) -> dict[str, tuple[_Rows | None, _Rows | None]]:
    """method -> (rows tried before unsupported subresources are refused (the views), rows tried after)"""
    out: dict[str, tuple[_Rows | None, _Rows | None]] = {}
    for method in dict.fromkeys(op.method for op in OPERATIONS if op.scope is scope):
        early = tuple(op for op in OPERATIONS if op.scope is scope and op.method == method and op.before_refusals)
        late = tuple(op for op in OPERATIONS if op.scope is scope and op.method == method and not op.before_refusals)
        out[method] = (_Rows(early) if early else None, _Rows(late) if late else None)
    return out


_BUCKET_ROWS, _OBJECT_ROWS = _grouped(Scope.BUCKET), _grouped(Scope.OBJECT)
_NO_ROWS: tuple[_Rows | None, _Rows | None] = (None, None)
_SERVICE = {op.method: op for op in OPERATIONS if op.scope is Scope.SERVICE}
# The common case, an object request without a query: method -> operation; PUT with x-amz-copy-source: CopyObject
_PLAIN_OBJECT = {method: late.fallback[-1] for method, (_, late) in _OBJECT_ROWS.items() if late and late.fallback}
_plain_object = _PLAIN_OBJECT.get
_GET_PLAIN, _PUT_PLAIN = _PLAIN_OBJECT["GET"], _PLAIN_OBJECT["PUT"]
_COPY_PLAIN = next(op for op in OPERATIONS if op.scope is Scope.OBJECT and op.query is None and op.header == _COPY)
# wio's own answers to bucket configuration (read-only views, a canned ACL), before unsupported ones are refused
# (a tuple: GetBucketAcl and PutBucketAcl share their subresource, so a dict by subresource lost one of them)
BUCKET_VIEWS = tuple(op for op in OPERATIONS if op.scope is Scope.BUCKET and op.before_refusals and op.query)


def _alone(name: str, query: Mapping[str, str]) -> bool:
    return all(other == name or other == "x-id" for other in query)


def _matches(op: Operation, query: Mapping[str, str], headers: Mapping[str, str]) -> bool:
    if op.query is not None:
        if op.query_value is None:
            if op.query not in query:
                return False
        elif query.get(op.query) != op.query_value:
            return False
        if op.query_also is not None and op.query_also not in query:
            return False
        if op.query_alone and not _alone(op.query, query):
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
    if scope is _BUCKET:
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
        scope, (early, late) = _BUCKET, _BUCKET_ROWS.get(method, _NO_ROWS)
    else:
        if not query:  # the common case: no subresource at all
            if method == "GET":   # the most common requests of all, by comparison (cheaper than a lookup)
                return _GET_PLAIN
            if method == "PUT":
                return _COPY_PLAIN if _COPY in headers else _PUT_PLAIN
            op = _plain_object(method)
            if op is not None:
                return op
        scope, (early, late) = _OBJECT, _OBJECT_ROWS.get(method, _NO_ROWS)
    if early is not None:
        op = early.first(query, headers)
        if op is not None:
            return op
    _refuse(method, scope, query)
    if late is not None:
        op = late.first(query, headers)
        if op is not None:
            return op
    if scope is _OBJECT and method == "POST":
        raise S3Error("NotImplemented", "This POST operation on an object is not supported")
    raise S3Error("MethodNotAllowed")
