"""The request's headers, parsed once at the front door: what is checked and what is forwarded is this.

S3 defines most request headers as taking one value. A request that repeats one of them could show
one value to wio (a quota measured on the first ``x-amz-copy-source-range``) and another to the node
(which reads the last): so any header of ``SINGLE_VALUED`` given twice is ``InvalidArgument`` before
anything else is done. Other repeated headers are joined with "," as SigV4 signs them.
"""
from __future__ import annotations

from aiohttp import web

from proxy.errors import S3Error
from proxy.state import HEADERS

__all__ = ["SINGLE_VALUED", "parse_headers", "request_headers"]

SINGLE_VALUED = frozenset({
    # HTTP headers S3 reads as one value
    "authorization", "host", "content-length", "content-type", "content-md5", "content-disposition",
    "content-language", "expires", "range", "if-match", "if-none-match", "if-modified-since",
    "if-unmodified-since", "expect",
    # signing and body encoding
    "x-amz-date", "x-amz-content-sha256", "x-amz-security-token", "x-amz-decoded-content-length", "x-amz-trailer",
    "x-amz-sdk-checksum-algorithm", "x-amz-checksum-algorithm", "x-amz-checksum-crc32", "x-amz-checksum-crc32c",
    "x-amz-checksum-crc64nvme", "x-amz-checksum-sha1", "x-amz-checksum-sha256", "x-amz-checksum-mode",
    # copies
    "x-amz-copy-source", "x-amz-copy-source-range", "x-amz-copy-source-if-match", "x-amz-copy-source-if-none-match",
    "x-amz-copy-source-if-modified-since", "x-amz-copy-source-if-unmodified-since", "x-amz-metadata-directive",
    "x-amz-tagging-directive", "x-amz-source-expected-bucket-owner",
    "x-amz-copy-source-server-side-encryption-customer-algorithm",
    "x-amz-copy-source-server-side-encryption-customer-key",
    "x-amz-copy-source-server-side-encryption-customer-key-md5",
    # object settings
    "x-amz-acl", "x-amz-storage-class", "x-amz-tagging", "x-amz-website-redirect-location",
    "x-amz-server-side-encryption", "x-amz-server-side-encryption-aws-kms-key-id",
    "x-amz-server-side-encryption-context", "x-amz-server-side-encryption-bucket-key-enabled",
    "x-amz-server-side-encryption-customer-algorithm", "x-amz-server-side-encryption-customer-key",
    "x-amz-server-side-encryption-customer-key-md5", "x-amz-object-lock-mode",
    "x-amz-object-lock-retain-until-date", "x-amz-object-lock-legal-hold", "x-amz-bypass-governance-retention",
    "x-amz-expected-bucket-owner", "x-amz-request-payer", "x-amz-mfa", "x-amz-object-ownership",
    "x-amz-write-offset-bytes", "x-amz-if-match-size", "x-amz-if-match-last-modified-time",
    "x-amz-if-match-initiated-time", "x-amz-mp-object-size", "x-amz-object-attributes", "x-amz-max-parts",
    "x-amz-part-number-marker", "x-amz-delete-marker", "x-amz-version-id",
})


def parse_headers(request: web.Request) -> dict[str, str]:
    """Lower-cased name -> value, kept on the request; a repeated single-valued header is ``InvalidArgument``."""
    out: dict[str, str] = {}
    for name, value in request.headers.items():
        lname = name.lower()
        if lname not in out:
            out[lname] = value
        elif lname in SINGLE_VALUED:
            raise S3Error("InvalidArgument", f"Header '{lname}' is given more than once")
        else:
            out[lname] += "," + value
    request[HEADERS] = out
    return out


def request_headers(request: web.Request) -> dict[str, str]:
    """The headers ``parse_headers`` accepted for this request (it runs first, on every S3 request)."""
    return request[HEADERS]
