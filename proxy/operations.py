"""Step 1b: which S3 operation is this request, and what permission does it need?

``classify`` is pure: (method, bucket, key, query, headers) -> Operation. Anything not in the table
answers ``NotImplemented``; bucket configuration is wio's business and answers a clear error.
Permission is the level needed on the addressed workspace (docs/design.md, "Permission levels"); ``None``
means the handler authorizes itself (service-level calls, per-key checks).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from policy.permissions import OPERATION_PERMISSIONS
from proxy.errors import S3Error

__all__ = ["Operation", "classify", "BUCKET_CONFIG_SUBRESOURCES", "BUCKET_VIEWS"]


@dataclass(frozen=True, slots=True)
class Operation:
    name: str                 # S3's own name: GetObject, PutObject, UploadPartCopy …
    permission: str | None    # read | write | admin | None (handler decides)
    has_body: bool = False    # the request carries an object body to stream upstream


# Bucket configuration wio manages itself: never passed through to a backend.
BUCKET_CONFIG_SUBRESOURCES = frozenset({
    "policy", "acl", "lifecycle", "cors", "notification", "replication", "encryption", "website", "logging",
    "tagging", "requestPayment", "object-lock", "ownershipControls", "publicAccessBlock", "analytics",
    "inventory", "metrics", "intelligent-tiering", "accelerate", "policyStatus",
})
# Object subresources wio does not offer.
_OBJECT_UNSUPPORTED = frozenset({"acl", "retention", "legal-hold", "restore", "select", "torrent"})


def _op(name: str, has_body: bool = False) -> Operation:
    return Operation(name, OPERATION_PERMISSIONS[name], has_body)


_SERVICE = {"GET": _op("ListBuckets")}
_BUCKET_GET = {"location": _op("GetBucketLocation"), "versioning": _op("GetBucketVersioning"),
               "uploads": _op("ListMultipartUploads"), "versions": _op("ListObjectVersions")}
# Configuration wio decides itself but shows read-only, in S3's shapes (proxy.views): ACLs and policy
# status from shares, and the features wio does not offer as S3 shows a bucket without them.
BUCKET_VIEWS = {"acl": _op("GetBucketAcl"), "policyStatus": _op("GetBucketPolicyStatus"),
                "policy": _op("GetBucketPolicy"), "cors": _op("GetBucketCors"),
                "lifecycle": _op("GetBucketLifecycleConfiguration"), "tagging": _op("GetBucketTagging"),
                "website": _op("GetBucketWebsite"), "replication": _op("GetBucketReplication"),
                "object-lock": _op("GetObjectLockConfiguration")}
# the plain object operations, built once (an Operation is immutable)
_GET_OBJECT = _op("GetObject")
_HEAD_OBJECT = _op("HeadObject")
_PUT_OBJECT = _op("PutObject", True)
_COPY_OBJECT = _op("CopyObject")
_DELETE_OBJECT = _op("DeleteObject")


def _unsupported(sub: str, bucket_level: bool) -> S3Error:
    if bucket_level:
        return S3Error("NotImplemented", f"Bucket configuration ('{sub}') is managed by wio, not through the S3 API")
    return S3Error("NotImplemented", f"The '{sub}' object subresource is not supported by wio")


def classify(method: str, bucket: str | None, key: str | None, query: Mapping[str, str],
             headers: Mapping[str, str]) -> Operation:
    if bucket is None:
        op = _SERVICE.get(method)
        if op is None:
            raise S3Error("MethodNotAllowed")
        return op
    if key is None:
        if method == "GET":
            for sub, op in BUCKET_VIEWS.items():
                if sub in query:
                    return op
        if method == "PUT" and "acl" in query and all(name in ("acl", "x-id") for name in query):
            # a canned ACL: who may read (proxy.buckets.put_bucket_acl)
            return _op("PutBucketAcl", True)
        if type(query) is not dict or not BUCKET_CONFIG_SUBRESOURCES.isdisjoint(query):  # (a dict's lookups are exact)
            for sub in BUCKET_CONFIG_SUBRESOURCES:
                if sub in query:
                    raise _unsupported(sub, True)
        if method == "GET":
            for sub, op in _BUCKET_GET.items():
                if sub in query:
                    return op
            if query.get("list-type") == "2":
                return _op("ListObjectsV2")
            return _op("ListObjects")
        if method == "HEAD":
            return _op("HeadBucket")
        if method in ("PUT", "DELETE"):
            # Only the bare bucket is created or deleted; any other subresource (versioning, …) is not ours.
            extra = sorted(name for name in query if name != "x-id")
            if extra:
                raise _unsupported(extra[0], True)
            return _op("CreateBucket" if method == "PUT" else "DeleteBucket")
        if method == "POST":
            if "delete" in query:
                return _op("DeleteObjects")
            if headers.get("content-type", "").lower().startswith("multipart/form-data"):
                return _op("PostObject", True)
        raise S3Error("MethodNotAllowed")
    if not query:  # the common case: no subresource at all
        if method == "GET":
            return _GET_OBJECT
        if method == "HEAD":
            return _HEAD_OBJECT
        if method == "PUT":
            return _COPY_OBJECT if "x-amz-copy-source" in headers else _PUT_OBJECT
        if method == "DELETE":
            return _DELETE_OBJECT
    if "acl" in query and method in ("GET", "PUT"):
        return _op("GetObjectAcl" if method == "GET" else "PutObjectAcl", method == "PUT")
    if type(query) is not dict or not _OBJECT_UNSUPPORTED.isdisjoint(query):  # (a dict's lookups are exact)
        for sub in _OBJECT_UNSUPPORTED:
            if sub in query:
                raise _unsupported(sub, False)
    if method == "GET":
        if "uploadId" in query:
            return _op("ListParts")
        if "tagging" in query:
            return _op("GetObjectTagging")
        if "attributes" in query:
            return _op("GetObjectAttributes")
        return _op("GetObject")
    if method == "HEAD":
        return _op("HeadObject")
    if method == "PUT":
        copy = "x-amz-copy-source" in headers
        if "uploadId" in query or "partNumber" in query:
            if "uploadId" not in query or "partNumber" not in query:
                raise S3Error("InvalidRequest", "UploadPart needs both partNumber and uploadId")
            return _op("UploadPartCopy") if copy else _op("UploadPart", True)
        if "tagging" in query:
            return _op("PutObjectTagging", True)
        return _op("CopyObject") if copy else _op("PutObject", True)
    if method == "DELETE":
        if "uploadId" in query:
            return _op("AbortMultipartUpload")
        if "tagging" in query:
            return _op("DeleteObjectTagging")
        return _op("DeleteObject")
    if method == "POST":
        if "uploads" in query:
            return _op("CreateMultipartUpload")
        if "uploadId" in query:
            return _op("CompleteMultipartUpload", True)
        raise S3Error("NotImplemented", "This POST operation on an object is not supported")
    raise S3Error("MethodNotAllowed")
