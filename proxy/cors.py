"""CORS for the console, and only as far as its presigned requests need.

The console (served by the admin API, so on the origin of ``WIO_API_URL``) sends presigned requests
straight to the proxy: listings, downloads, uploads (single and multipart), deletes. The browser
lets the page read those answers only if the proxy names the console's origin. wio answers CORS

- for that one origin (no wildcard, never for any other site),
- only for presigned requests (``X-Amz-Signature`` in the query): a request signed in headers never
  comes from the console, so a page elsewhere learns nothing new about it,
- with no credentials (presigned URLs carry their authority; cookies play no part),
- exposing ``ETag`` (the multipart upload needs each part's) and the request id.

Preflights (``OPTIONS`` with ``Access-Control-Request-Method``) are answered here, before
authentication, with no access to anything (a refusal is S3's ``AccessDenied``, without CORS headers):
the real request that follows is authenticated and authorized like any other. Bucket CORS configuration
stays unsupported (``PutBucketCors`` answers NotImplemented): wio owns it.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler

from foundation.settings import Settings
from proxy.errors import S3Error

__all__ = ["install", "console_origin", "preflight"]

_METHODS = "GET, HEAD, PUT, POST, DELETE"
_ALLOWED_METHODS = frozenset(_METHODS.split(", "))
# Headers a browser may add to a presigned request: the body's type, ranges, conditional reads.
_HEADERS = frozenset({"content-type", "range", "if-match", "if-none-match", "content-md5"})
_EXPOSE = "ETag, x-amz-request-id, x-amz-version-id, Content-Length, Content-Range"
ORIGIN = web.AppKey("cors_origin", str)


def console_origin(settings: Settings) -> str:
    """The console's origin: scheme://host[:port] of the API's public URL."""
    parts = urlsplit(settings.api_url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _presigned(request: web.Request) -> bool:
    return "X-Amz-Signature=" in request.query_string


async def preflight(request: web.Request, fallback: Handler) -> web.StreamResponse:
    if "Access-Control-Request-Method" not in request.headers:
        return await fallback(request)   # an OPTIONS that is no preflight: S3's answer, as before
    origin = request.headers.get("Origin", "")
    method = request.headers["Access-Control-Request-Method"].upper()
    wanted = {h.strip().lower() for h in request.headers.get("Access-Control-Request-Headers", "").split(",") if h.strip()}
    if origin.lower() != request.app[ORIGIN] or not _presigned(request) or method not in _ALLOWED_METHODS \
            or not wanted <= _HEADERS:
        # No CORS headers: the browser refuses the request. Nothing about the resource is revealed.
        raise S3Error("AccessDenied", "CORS request refused: wio answers CORS only for its console's presigned requests")
    return web.Response(status=204, headers={
        "Access-Control-Allow-Origin": origin, "Access-Control-Allow-Methods": _METHODS,
        "Access-Control-Allow-Headers": ", ".join(sorted(wanted)) if wanted else "content-type",
        "Access-Control-Max-Age": "600", "Vary": "Origin"})


async def _response_headers(request: web.Request, response: web.StreamResponse) -> None:
    origin = request.headers.get("Origin")
    if origin is None or request.method == "OPTIONS" or origin.lower() != request.app[ORIGIN] \
            or not _presigned(request):
        return
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Expose-Headers"] = _EXPOSE
    response.headers.add("Vary", "Origin")


def install(app: web.Application, settings: Settings) -> None:
    """Answer the console's CORS: the console's origin, and its headers on every response as it is prepared
    (a signal, not a middleware: the other requests pay nothing but the header check above). The proxy's
    front door (proxy.app) sends every OPTIONS to ``preflight``, whose ``fallback`` (the S3 entry)
    answers an OPTIONS that is no preflight."""
    app[ORIGIN] = console_origin(settings)
    app.on_response_prepare.append(_response_headers)   # sent for requests with an Origin header (proxy.app)
