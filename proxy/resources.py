"""The proxy's app resources, as aiohttp AppKeys."""
from __future__ import annotations

import aiohttp
from aiohttp import web

from proxy.authz import Authorizer
from proxy.quota import Quotas
from proxy.upstream import Upstream
from wio.events import EventSink
from wio.resp import RespClient
from wio.secrets import SecretBox
from wio.settings import Settings

__all__ = ["SETTINGS", "RESP", "BOX", "AUTHZ", "UPSTREAM", "API_HTTP", "SINK", "QUOTAS"]

SETTINGS = web.AppKey("settings", Settings)
RESP = web.AppKey("resp", RespClient)  # the proxy's one Redis client (wio.resp): scripts and stream entries
BOX = web.AppKey("box", SecretBox)
AUTHZ = web.AppKey("authz", Authorizer)
UPSTREAM = web.AppKey("upstream", Upstream)
API_HTTP = web.AppKey("api_http", aiohttp.ClientSession)
SINK = web.AppKey("sink", EventSink)
QUOTAS = web.AppKey("quotas", Quotas)
