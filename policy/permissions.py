"""Which permission level each S3 operation needs on its workspace (docs/design.md "Permission levels").

The proxy's classifier and the admin API's explain endpoint both read this one table.
``None``: the operation is not decided by a workspace grant (service-level calls), or is decided
per key by its handler (DeleteObjects needs write on every key it names).
"""
from __future__ import annotations

__all__ = ["OPERATION_PERMISSIONS", "LISTING_OPERATIONS"]

OPERATION_PERMISSIONS: dict[str, str | None] = {
    # read
    "GetObject": "read", "HeadObject": "read", "GetObjectTagging": "read", "GetObjectAttributes": "read",
    "ListParts": "read", "ListObjects": "read", "ListObjectsV2": "read", "ListObjectVersions": "read",
    "ListMultipartUploads": "read", "HeadBucket": "read", "GetBucketLocation": "read",
    "GetBucketVersioning": "read", "GetBucketPolicyStatus": "read", "GetBucketPolicy": "read",
    "GetBucketCors": "read", "GetBucketLifecycleConfiguration": "read", "GetBucketTagging": "read",
    "GetBucketWebsite": "read", "GetBucketReplication": "read", "GetObjectLockConfiguration": "read",
    # write
    "PutObject": "write", "PostObject": "write", "CopyObject": "write", "DeleteObject": "write",
    "PutObjectTagging": "write", "DeleteObjectTagging": "write", "CreateMultipartUpload": "write",
    "UploadPart": "write", "UploadPartCopy": "write", "CompleteMultipartUpload": "write",
    "AbortMultipartUpload": "write", "DeleteObjects": None,
    # admin
    "DeleteBucket": "admin", "GetBucketAcl": "admin", "GetObjectAcl": "admin",  # the ACLs show every share
    "PutObjectAcl": "admin", "PutBucketAcl": "admin",   # a canned ACL: who may read (public, anonymous)
    # not a workspace grant
    "ListBuckets": None, "CreateBucket": None,
}

LISTING_OPERATIONS = frozenset({"ListObjects", "ListObjectsV2", "ListObjectVersions", "ListMultipartUploads"})
