"""The S3 operation table: every operation wio serves, in one place (docs/design.md, "The request path").

Each row says how the operation is recognised (method, what the path addresses, a query subresource,
a header), the permission it needs on its workspace, how it is authorized (its ``Strategy``) and which
proxy handler serves it (``module.function`` in ``proxy/``, resolved once when ``proxy.handlers`` is
imported). It is pure data: the proxy builds its recognition dicts and its one authorization door from
it, the admin API's explain endpoint reads permissions and strategies from it, and the S3 operations
list in docs/conformance.md is generated from it (``python -m policy.operations --markdown``).

Order matters within one (method, scope): the first row that matches wins, as S3 picks one
subresource when a request names several (``proxy.operations.classify``).
"""
from __future__ import annotations

import enum
import sys
from dataclasses import dataclass

__all__ = ["Scope", "Strategy", "Operation", "OPERATIONS", "BY_NAME", "OPERATION_PERMISSIONS",
           "LISTING_OPERATIONS", "markdown"]


class Scope(enum.Enum):
    """What the request path addresses."""
    ROOT = "root path"         # STS: POST / whatever the host (checked before the path is read as an address)
    SERVICE = "service"        # no bucket
    BUCKET = "bucket"          # a bucket, no key
    OBJECT = "object"          # a bucket and a key


class Strategy(enum.Enum):
    """How ``proxy.app.authorize`` decides an operation: every request goes through it."""
    OBJECT = "object"            # SigV4; a grant of the needed level covering the key (the workspace root for buckets)
    LISTING = "listing"          # SigV4; a read grant overlapping the prefix; the results filtered to the grants
    PER_KEY = "per-key"          # SigV4; the workspace must be visible, the handler needs write on every key named
    COPY_SOURCE = "copy source"  # OBJECT on the target, and read on the x-amz-copy-source key
    CALLER = "caller-only"       # SigV4; a valid, enabled key; no workspace grant (the admin API decides)
    SERVICE = "caller-only, visible workspaces"   # CALLER, and the workspaces the caller can read (ListBuckets)
    STS = "STS"                  # AssumeRole: SigV4 (service sts); AssumeRoleWithWebIdentity: a login/ID token
    POST_POLICY = "POST policy"  # the form's SigV4 POST policy, then OBJECT (write) on the key the form names


@dataclass(frozen=True, slots=True)
class Operation:
    name: str                    # S3's own name: GetObject, PutObject, UploadPartCopy …
    method: str
    scope: Scope
    permission: str | None       # read | write | admin on the workspace; None: not a workspace grant
    strategy: Strategy
    handler: str                 # "module.function" in proxy/
    query: str | None = None     # a query parameter that must be present (a subresource: "uploads", "tagging" …)
    query_value: str | None = None   # … with this value (list-type=2)
    query_also: str | None = None    # … and this one too (partNumber of a part upload)
    query_alone: bool = False    # … and no other parameter but x-id (PutBucketAcl: not with another subresource)
    header: str | None = None    # a header that must be present (x-amz-copy-source) …
    header_prefix: str = ""      # … and start with this (lower-cased; content-type of browser and STS forms)
    has_body: bool = False       # the request carries an object body to stream upstream
    before_refusals: bool = False   # chosen before unsupported subresources are refused (the read-only views)

    def recognised_by(self) -> str:
        """How the row is recognised, as docs/conformance.md shows it."""
        parts = [self.method, {Scope.ROOT: "/", Scope.SERVICE: "/", Scope.BUCKET: "/bucket",
                               Scope.OBJECT: "/bucket/key"}[self.scope]]
        if self.query is not None:
            parts[-1] += f"?{self.query}" + (f"={self.query_value}" if self.query_value is not None else "")
            parts[-1] += f"&{self.query_also}" if self.query_also is not None else ""
        if self.header is not None:
            parts.append(f"{self.header}: {self.header_prefix}…" if self.header_prefix else f"+ {self.header}")
        return " ".join(parts)


_R, _W, _A = "read", "write", "admin"
_S, _B, _O = Scope.SERVICE, Scope.BUCKET, Scope.OBJECT
_OBJ, _LIST = Strategy.OBJECT, Strategy.LISTING
_COPY = "x-amz-copy-source"


def _view(name: str, query: str, permission: str, handler: str) -> Operation:
    return Operation(name, "GET", _B, permission, _OBJ, handler, query=query, before_refusals=True)


def _not_configured(name: str, query: str) -> Operation:
    return _view(name, query, _R, "views.not_configured")


OPERATIONS: tuple[Operation, ...] = (
    # -- the root path, before any address is read
    Operation("STS", "POST", Scope.ROOT, None, Strategy.STS, "sts.sts_action",
              header="content-type", header_prefix="application/x-www-form-urlencoded"),
    # -- the service
    Operation("ListBuckets", "GET", _S, None, Strategy.SERVICE, "buckets.list_buckets"),
    # -- buckets: the read-only views first (S3's shapes of what wio decides itself, proxy/views.py)
    _view("GetBucketAcl", "acl", _A, "views.get_bucket_acl"),   # the ACLs show every share
    _view("GetBucketPolicyStatus", "policyStatus", _R, "views.get_bucket_policy_status"),
    _not_configured("GetBucketPolicy", "policy"),
    _not_configured("GetBucketCors", "cors"),
    _not_configured("GetBucketLifecycleConfiguration", "lifecycle"),
    _not_configured("GetBucketTagging", "tagging"),
    _not_configured("GetBucketWebsite", "website"),
    _not_configured("GetBucketReplication", "replication"),
    _not_configured("GetObjectLockConfiguration", "object-lock"),
    Operation("GetBucketLocation", "GET", _B, _R, _OBJ, "buckets.get_bucket_location", query="location"),
    Operation("GetBucketVersioning", "GET", _B, _R, _OBJ, "buckets.get_bucket_versioning", query="versioning"),
    Operation("ListMultipartUploads", "GET", _B, _R, _LIST, "buckets.list_objects", query="uploads"),
    Operation("ListObjectVersions", "GET", _B, _R, _LIST, "buckets.list_objects", query="versions"),
    Operation("ListObjectsV2", "GET", _B, _R, _LIST, "buckets.list_objects", query="list-type", query_value="2"),
    Operation("ListObjects", "GET", _B, _R, _LIST, "buckets.list_objects"),
    Operation("HeadBucket", "HEAD", _B, _R, _OBJ, "buckets.head_bucket"),
    Operation("CreateBucket", "PUT", _B, None, Strategy.CALLER, "buckets.create_bucket"),
    Operation("PutBucketAcl", "PUT", _B, _A, _OBJ, "buckets.put_bucket_acl", query="acl", query_alone=True,
              has_body=True, before_refusals=True),   # a canned ACL: who may read (public, anonymous)
    Operation("DeleteBucket", "DELETE", _B, _A, _OBJ, "buckets.delete_bucket"),
    Operation("DeleteObjects", "POST", _B, None, Strategy.PER_KEY, "objects.delete_objects", query="delete"),
    Operation("PostObject", "POST", _B, _W, Strategy.POST_POLICY, "post_object.post_object",
              header="content-type", header_prefix="multipart/form-data", has_body=True),
    # -- objects
    Operation("GetObjectAcl", "GET", _O, _A, _OBJ, "views.get_object_acl", query="acl", before_refusals=True),
    Operation("ListParts", "GET", _O, _R, _OBJ, "objects.forward_object", query="uploadId"),
    Operation("GetObjectTagging", "GET", _O, _R, _OBJ, "objects.forward_object", query="tagging"),
    Operation("GetObjectAttributes", "GET", _O, _R, _OBJ, "objects.forward_object", query="attributes"),
    Operation("GetObject", "GET", _O, _R, _OBJ, "objects.forward_object"),
    Operation("HeadObject", "HEAD", _O, _R, _OBJ, "objects.forward_object"),
    Operation("PutObjectAcl", "PUT", _O, _A, _OBJ, "views.put_object_acl", query="acl", has_body=True,
              before_refusals=True),
    Operation("UploadPartCopy", "PUT", _O, _W, Strategy.COPY_SOURCE, "copies.upload_part_copy", query="uploadId",
              query_also="partNumber", header=_COPY),
    Operation("UploadPart", "PUT", _O, _W, _OBJ, "objects.upload_part", query="uploadId",
              query_also="partNumber", has_body=True),
    Operation("PutObjectTagging", "PUT", _O, _W, _OBJ, "objects.forward_object", query="tagging", has_body=True),
    Operation("CopyObject", "PUT", _O, _W, Strategy.COPY_SOURCE, "copies.copy_object", header=_COPY),
    Operation("PutObject", "PUT", _O, _W, _OBJ, "objects.put_object", has_body=True),
    Operation("AbortMultipartUpload", "DELETE", _O, _W, _OBJ, "objects.abort_upload", query="uploadId"),
    Operation("DeleteObjectTagging", "DELETE", _O, _W, _OBJ, "objects.forward_object", query="tagging"),
    Operation("DeleteObject", "DELETE", _O, _W, _OBJ, "objects.delete_object"),
    Operation("CreateMultipartUpload", "POST", _O, _W, _OBJ, "objects.create_upload", query="uploads"),
    Operation("CompleteMultipartUpload", "POST", _O, _W, _OBJ, "objects.complete_upload", query="uploadId",
              has_body=True),
)

BY_NAME: dict[str, Operation] = {op.name: op for op in OPERATIONS}
# What the admin API's explain endpoint reads (docs/design.md "Permission levels").
OPERATION_PERMISSIONS: dict[str, str | None] = {op.name: op.permission for op in OPERATIONS if op.scope != Scope.ROOT}
LISTING_OPERATIONS = frozenset(op.name for op in OPERATIONS if op.strategy is Strategy.LISTING)


def markdown() -> str:
    """The S3 operations list of docs/conformance.md (tests/policy/test_operations.py keeps them equal)."""
    lines = ["| operation | recognised by | permission | authorization | handler |", "|---|---|---|---|---|"]
    for op in OPERATIONS:
        lines.append(f"| {op.name} | `{op.recognised_by()}` | {op.permission or '-'} | {op.strategy.value} | "
                     f"`proxy.{op.handler}` |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":   # python -m policy.operations --markdown
    if sys.argv[1:] != ["--markdown"]:
        sys.exit("usage: python -m policy.operations --markdown")
    sys.stdout.write(markdown())
