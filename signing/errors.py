"""The one exception signing/ raises, carrying an AWS S3 error code.

Codes are the ones S3 documents in "Error responses" (S3 API reference); ``STATUS`` gives the HTTP
status S3 answers with for each code this package can raise, so a caller without its own table
still answers correctly. Messages are ours.
"""
from __future__ import annotations

__all__ = ["SigningError", "STATUS"]

STATUS: dict[str, int] = {
    "AccessDenied": 403,
    "AuthorizationHeaderMalformed": 400,
    "AuthorizationQueryParametersError": 400,
    "BadDigest": 400,
    "EntityTooLarge": 400,
    "EntityTooSmall": 400,
    "IncompleteBody": 400,
    "InvalidArgument": 400,
    "InvalidDigest": 400,
    "InvalidPolicyDocument": 400,
    "InvalidRequest": 400,
    "MalformedPOSTRequest": 400,
    "MalformedTrailerError": 400,
    "MissingContentLength": 411,
    "RequestTimeTooSkewed": 403,
    "SignatureDoesNotMatch": 403,
    "XAmzContentSHA256Mismatch": 400,
}


class SigningError(Exception):
    """An authentication or body-integrity failure.

    ``code`` is the S3 error code, ``message`` human text, ``status`` the HTTP status, and
    ``details`` extra elements S3 puts in its error document (for example ``HeadersNotSigned``,
    ``StringToSign``, ``CanonicalRequest``, ``RequestTime``/``ServerTime``). The proxy converts it in
    one place, ``proxy.errors.S3Error.from_signing``, which keeps all of them in the error document.
    """

    def __init__(self, code: str, message: str, *, details: dict[str, str] | None = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = STATUS.get(code, 400)
        self.details = details or {}
