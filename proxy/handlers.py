"""The dispatch table: S3 operation -> handler. Authorization already happened in ``proxy.app.authorize``."""
from __future__ import annotations

from proxy import buckets, copies, objects, views

__all__ = ["HANDLERS"]

HANDLERS = {
    "CreateBucket": buckets.create_bucket, "DeleteBucket": buckets.delete_bucket, "HeadBucket": buckets.head_bucket,
    "GetBucketLocation": buckets.get_bucket_location, "GetBucketVersioning": buckets.get_bucket_versioning,
    "GetBucketAcl": views.get_bucket_acl, "GetObjectAcl": views.get_object_acl, "PutObjectAcl": views.put_object_acl,
    "PutBucketAcl": buckets.put_bucket_acl,
    "GetBucketPolicyStatus": views.get_bucket_policy_status,
    **dict.fromkeys(views.NOT_CONFIGURED, views.not_configured),
    "ListObjects": buckets.list_objects, "ListObjectsV2": buckets.list_objects,
    "ListObjectVersions": buckets.list_objects, "ListMultipartUploads": buckets.list_objects,
    "GetObject": objects.forward_object, "HeadObject": objects.forward_object,
    "GetObjectTagging": objects.forward_object, "PutObjectTagging": objects.forward_object,
    "DeleteObjectTagging": objects.forward_object, "GetObjectAttributes": objects.forward_object,
    "ListParts": objects.forward_object,
    "PutObject": objects.put_object, "DeleteObject": objects.delete_object,
    "CreateMultipartUpload": objects.create_upload, "UploadPart": objects.upload_part,
    "CompleteMultipartUpload": objects.complete_upload, "AbortMultipartUpload": objects.abort_upload,
    "DeleteObjects": objects.delete_objects,
    "CopyObject": copies.copy_object, "UploadPartCopy": copies.upload_part_copy,
}
