"""S3 errors: one table from code to HTTP status and message, one exception type, one renderer.

Codes are AWS's (https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html); the messages
are ours. Only the proxy's error middleware turns an ``S3Error`` into XML, with the request id.
``S3Error.from_signing`` is the one conversion of ``signing``'s errors: it keeps their details
(RequestTime/ServerTime/MaxAllowedSkewMilliseconds, HeadersNotSigned, StringToSign …), which the
error document carries as elements of their own, as S3's does.
"""
from __future__ import annotations

import re
from xml.sax.saxutils import escape

from signing import SigningError

__all__ = ["S3Error", "ERRORS", "error_xml"]

ERRORS: dict[str, tuple[int, str]] = {
    "AccessDenied": (403, "Access Denied"),
    "AccountProblem": (403, "The account is disabled"),
    "AuthorizationHeaderMalformed": (400, "The authorization header is malformed"),
    "AuthorizationQueryParametersError": (400, "The presigned query parameters are malformed"),
    "BadDigest": (400, "The checksum of the body does not match the one sent"),
    "BucketAlreadyExists": (409, "The requested bucket name is not available; it belongs to someone else"),
    "BucketAlreadyOwnedByYou": (409, "You already own this bucket"),
    "BucketNotEmpty": (409, "The bucket you tried to delete is not empty"),
    "EntityTooLarge": (400, "Your proposed upload exceeds the maximum allowed size"),
    "EntityTooSmall": (400, "Your proposed upload is smaller than the minimum allowed size"),
    "ExpiredToken": (400, "The provided token has expired"),
    "IncompleteBody": (400, "The body is shorter than its declared length"),
    "InternalError": (500, "We encountered an internal error; please try again"),
    "InvalidAccessKeyId": (403, "The access key id you provided does not exist in our records"),
    "InvalidArgument": (400, "Invalid argument"),
    "InvalidBucketName": (400, "The specified bucket is not valid"),
    "InvalidDigest": (400, "The Content-MD5 or checksum you specified is not valid"),
    "InvalidPart": (400, "One or more of the specified parts could not be found"),
    "InvalidPartOrder": (400, "The list of parts was not in ascending order"),
    "InvalidRange": (416, "The requested range is not satisfiable"),
    "InvalidRequest": (400, "Invalid request"),
    "InvalidToken": (400, "The provided token is malformed or otherwise invalid"),
    "InvalidURI": (400, "Could not parse the specified URI"),
    "KeyTooLongError": (400, "Your key is too long"),
    "MalformedTrailerError": (400, "The request contained trailing data that was not well-formed"),
    "InvalidPolicyDocument": (400, "The content of the form does not meet the conditions of the policy document"),
    "MalformedXML": (400, "The XML you provided was not well-formed or did not validate"),
    "MalformedPOSTRequest": (400, "The body of your POST request is not well-formed multipart/form-data"),
    "MaxMessageLengthExceeded": (400, "Your request was too big"),
    "MetadataTooLarge": (400, "Your metadata headers exceed the maximum allowed metadata size"),
    "MethodNotAllowed": (405, "The specified method is not allowed against this resource"),
    "MissingContentLength": (411, "You must provide the Content-Length HTTP header"),
    "MissingSecurityHeader": (400, "Your request is missing a required header"),
    "NoSuchBucket": (404, "The specified bucket does not exist"),
    "NoSuchKey": (404, "The specified key does not exist"),
    "NoSuchBucketPolicy": (404, "The bucket has no bucket policy"),
    "NoSuchCORSConfiguration": (404, "The bucket has no CORS configuration"),
    "NoSuchLifecycleConfiguration": (404, "The bucket has no lifecycle configuration"),
    "NoSuchWebsiteConfiguration": (404, "The bucket has no website configuration"),
    "ObjectLockConfigurationNotFoundError": (404, "The bucket has no object lock configuration"),
    "ReplicationConfigurationNotFoundError": (404, "The bucket has no replication configuration"),
    "NoSuchUpload": (404, "The specified multipart upload does not exist"),
    "NoSuchTagSet": (404, "There is no tag set"),
    "NotImplemented": (501, "A header or operation you provided is not implemented"),
    "NotModified": (304, "Not Modified"),
    "OperationAborted": (409, "A conflicting operation is in progress on this resource; please retry"),
    "PreconditionFailed": (412, "At least one of the preconditions you specified did not hold"),
    "QuotaExceeded": (403, "The workspace or user quota would be exceeded by this write"),
    "RequestTimeTooSkewed": (403, "The difference between the request time and the server's time is too large"),
    "RequestTimeout": (400, "Your socket connection to the server was not read from or written to in time"),
    "ServiceUnavailable": (503, "The service is unavailable; please retry"),
    "SignatureDoesNotMatch": (403, "The request signature we calculated does not match the signature you provided"),
    "SlowDown": (503, "Please reduce your request rate"),
    "XAmzContentSHA256Mismatch": (400, "The provided x-amz-content-sha256 header does not match what was computed"),
}


class S3Error(Exception):
    def __init__(self, code: str, message: str | None = None, *, status: int | None = None,
                 resource: str | None = None, headers: dict[str, str] | None = None,
                 details: dict[str, str] | None = None):
        default_status, default_message = ERRORS.get(code, (500, code))
        super().__init__(message or default_message)
        self.code = code
        self.message = message or default_message
        self.status = status or default_status
        self.resource = resource
        self.headers = headers or {}
        self.details = details or {}   # extra elements of the error document, after Message

    @classmethod
    def from_signing(cls, exc: SigningError) -> S3Error:
        """A signature, clock or body-integrity failure, with its status and every detail it carries."""
        return cls(exc.code, exc.message, status=exc.status, details=exc.details)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NOT_XML_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")   # a canonical request keeps its newlines
_ELEMENT = re.compile(r"[A-Za-z][A-Za-z0-9-]*")


def error_xml(code: str, message: str, resource: str, request_id: str,
              details: dict[str, str] | None = None) -> bytes:
    # XML 1.0 cannot carry control characters: percent-encode them so the body stays well-formed.
    resource = _CONTROL.sub(lambda m: f"%{ord(m.group()):02X}", resource)
    message = _CONTROL.sub(" ", message)
    extra = "".join(f"<{name}>{escape(_NOT_XML_TEXT.sub(' ', value))}</{name}>"
                    for name, value in (details or {}).items() if _ELEMENT.fullmatch(name)) if details else ""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{escape(code)}</Code>'
            f"<Message>{escape(message)}</Message>{extra}<Resource>{escape(resource)}</Resource>"
            f"<RequestId>{request_id}</RequestId></Error>").encode()
