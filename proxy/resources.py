"""The proxy's app resources, as aiohttp AppKeys."""
from __future__ import annotations

import aiohttp
from aiohttp import web

from proxy.authz import Authorizer
from proxy.quota import Quotas
from proxy.upstream import Upstream
from foundation.events import EventSink
from foundation.resp import RespClient
from foundation.secrets import SecretBox, proxy_api_credential
from foundation.settings import Settings

__all__ = ["SETTINGS", "RESP", "BOX", "AUTHZ", "UPSTREAM", "API_HTTP", "SINK", "QUOTAS", "proxy_api_headers"]

SETTINGS = web.AppKey("settings", Settings)
RESP = web.AppKey("resp", RespClient)  # the proxy's one Redis client (foundation.resp): scripts and stream entries
BOX = web.AppKey("box", SecretBox)
AUTHZ = web.AppKey("authz", Authorizer)
UPSTREAM = web.AppKey("upstream", Upstream)
API_HTTP = web.AppKey("api_http", aiohttp.ClientSession)  # the admin API, for the few calls below
SINK = web.AppKey("sink", EventSink)
QUOTAS = web.AppKey("quotas", Quotas)


def proxy_api_headers(settings: Settings, user: str) -> dict[str, str]:
    """How the proxy calls the admin API for a user it authenticated (CreateBucket, DeleteBucket, STS
    AssumeRole): its own credential, which the API accepts for those calls only."""
    return {"Authorization": f"WioProxy {proxy_api_credential(settings.master_key)}", "X-Wio-Acting-User": user}
