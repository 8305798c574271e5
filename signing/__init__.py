"""AWS Signature Version 4 for S3, sans-I/O: verify every form clients use, and sign.

Nothing here does I/O, imports aiohttp or asyncio, or reads the clock: the caller passes ``now``.

Verifying a request, in the order the proxy meets it::

    auth = parse_request_auth(method, raw_path, raw_query, headers, now=now, region=region)
    if auth is None: ...                         # anonymous
    secret = lookup(auth.access_key_id)          # InvalidAccessKeyId is the caller's to raise
    ctx = verify_signature(auth, secret, method, raw_path, raw_query, headers)
    gate = HoldBackBody(make_body_verifier(auth, ctx, headers))
    ... forward gate.feed(piece) for each piece of the body, then gate.finish() (the held tail)

Every failure is a ``SigningError`` with an S3 error ``code``, a ``message`` and an HTTP ``status``.

Modules, each following the AWS documentation section named:

- ``canonical``  -- "Create a canonical request" (IAM user guide, create-signed-request.html) and
  S3's variant in "Signature Calculations for the Authorization Header" (S3 API reference,
  sig-v4-header-based-auth.html): canonical URI (S3: no normalisation, encoded once), canonical
  query, canonical headers, the canonical request.
- ``keys``       -- "Create a string to sign", "Derive a signing key", "Calculate the signature"
  (IAM user guide); chunk and trailer strings to sign (S3 API reference, sigv4-streaming.html,
  sigv4-streaming-trailers.html). Derived keys are cached (LRU).
- ``auth``       -- parsing without the secret: "Using the Authorization Header"
  (sigv4-auth-using-authorization-header.html) and "Using Query Parameters"
  (sigv4-query-string-auth.html), with S3's checks (scope, clock skew, expiry, signed headers).
- ``verify``     -- the signature check (constant time) and ``SigningContext``, the chain state
  for chunk signatures.
- ``chunked``    -- the aws-chunked encoding (sigv4-streaming.html, sigv4-streaming-trailers.html):
  a resumable ``ChunkedDecoder`` and the encoders.
- ``checksums``  -- Content-MD5 and x-amz-checksum-{crc32,crc32c,crc64nvme,sha1,sha256}
  ("Checking object integrity", S3 user guide); awscrt's C CRCs when installed.
- ``body``       -- ``BodyVerifier``: payload hash, chunk and trailer signatures, checksums and
  length while the body streams; ``HoldBackBody`` withholds the tail until the verdict.
- ``sign``       -- ``sign_request`` (re-signing for backends), ``presign_url``/``presign_query``
  and ``ChunkSigner`` (aws-chunked bodies), sharing the canonicalisation above.
- ``post_policy`` -- browser POST uploads (sigv4-UsingHTTPPOST.html,
  sigv4-HTTPPOSTConstructPolicy.html): ``parse_post_policy`` then ``verify_post_policy``.
- ``errors``     -- ``SigningError`` and the HTTP status of each code it uses.
"""
from __future__ import annotations

from .auth import (
    MAX_PRESIGN_EXPIRES,
    QUERY_AUTH_PARAMS,
    STREAMING_PAYLOAD,
    STREAMING_PAYLOAD_TRAILER,
    STREAMING_UNSIGNED_PAYLOAD_TRAILER,
    UNSIGNED_PAYLOAD,
    ParsedAuth,
    parse_authorization_header,
    parse_request_auth,
)
from .body import BodyVerifier, HoldBackBody, make_body_verifier, strip_aws_chunked
from .canonical import (
    EMPTY_SHA256,
    canonical_headers,
    canonical_query,
    canonical_query_from_pairs,
    canonical_request,
    canonical_uri,
    collect_headers,
)
from .checksums import CHECKSUM_HEADERS, Checksum
from .chunked import ChunkedDecoder, ChunkEnd, ChunkHeader, EndOfBody, Trailer, encode_chunk, encode_last_chunk
from .errors import STATUS, SigningError
from .keys import credential_scope, derive_signing_key, signature, string_to_sign
from .post_policy import PostPolicy, PostPolicyResult, parse_post_policy, verify_post_policy
from .sign import (ChunkSigner, amz_date, presign_query, presign_url, s3_request_target, sign_canonical, sign_request,
                   sign_request_with_context, sign_s3_request)
from .verify import SigningContext, verify_signature

__all__ = [
    # errors
    "SigningError",
    "STATUS",
    # verifying requests
    "ParsedAuth",
    "QUERY_AUTH_PARAMS",
    "parse_request_auth",
    "parse_authorization_header",
    "SigningContext",
    "verify_signature",
    # bodies
    "BodyVerifier",
    "make_body_verifier",
    "HoldBackBody",
    "strip_aws_chunked",
    "ChunkedDecoder",
    "ChunkHeader",
    "ChunkEnd",
    "Trailer",
    "EndOfBody",
    "encode_chunk",
    "encode_last_chunk",
    "Checksum",
    "CHECKSUM_HEADERS",
    # signing
    "sign_request",
    "sign_canonical",
    "sign_s3_request",
    "s3_request_target",
    "sign_request_with_context",
    "presign_query",
    "presign_url",
    "ChunkSigner",
    "amz_date",
    # POST policy
    "PostPolicy",
    "PostPolicyResult",
    "parse_post_policy",
    "verify_post_policy",
    # spec steps
    "canonical_uri",
    "canonical_query",
    "canonical_query_from_pairs",
    "canonical_headers",
    "canonical_request",
    "collect_headers",
    "credential_scope",
    "string_to_sign",
    "derive_signing_key",
    "signature",
    "EMPTY_SHA256",
    # payload hash keywords
    "UNSIGNED_PAYLOAD",
    "STREAMING_PAYLOAD",
    "STREAMING_PAYLOAD_TRAILER",
    "STREAMING_UNSIGNED_PAYLOAD_TRAILER",
    "MAX_PRESIGN_EXPIRES",
]
