"""``GET /api/v1/info``: what a client needs to know before it logs in (no authentication).

The CLI (``wio login``/``wio register``) and the console read the S3 endpoint from here instead of
guessing it from the API's address: behind a load balancer, on another port, or over TLS with a
certificate of the deployment's own CA, which is served too so that tools can be told to trust it.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from aiohttp import web

from admin_api.context import SETTINGS
from foundation.settings import Settings

__all__ = ["routes"]

routes = web.RouteTableDef()


@lru_cache(maxsize=4)
def _read_ca(path: str) -> str:
    return Path(path).read_text()


def public_info(settings: Settings) -> dict:
    info: dict = {"s3_endpoint": settings.s3_public_endpoint, "region": settings.region,
                  "tls": settings.s3_public_endpoint.startswith("https://"),
                  "virtual_host_domain": settings.s3_domain}
    if settings.s3_ca_file:
        info["ca_certificate"] = _read_ca(settings.s3_ca_file)
    if settings.oidc_issuer:
        info["oidc_issuer"] = settings.oidc_issuer
    info["password_login"] = settings.password_login
    return info


@routes.get("/api/v1/info")
async def info(request: web.Request) -> web.Response:
    """Where the S3 proxy is and how to reach it (public: no login needed).

    `s3_endpoint` (the load balancer's address when WIO_S3_PUBLIC_URL is set), `region`, `tls`,
    `virtual_host_domain`, `ca_certificate` (PEM) when the endpoint uses a private CA,
    `oidc_issuer` when single sign-on is configured, and whether `password_login` is on."""
    return web.json_response(public_info(request.app[SETTINGS]))
