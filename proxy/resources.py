"""The proxy's app resources, as aiohttp AppKeys."""
from __future__ import annotations

import aiohttp
from aiohttp import web
from redis.asyncio import Redis

from proxy.authz import Authorizer
from proxy.quota import Quotas
from proxy.resp import RespClient
from proxy.upstream import Upstream
from wio.events import EventSink
from wio.secrets import SecretBox
from wio.settings import Settings

__all__ = ["SETTINGS", "REDIS", "RESP", "BOX", "AUTHZ", "UPSTREAM", "API_HTTP", "SINK", "QUOTAS"]

SETTINGS = web.AppKey("settings", Settings)
REDIS = web.AppKey("redis", Redis)  # redis-py, off the request path (events)
RESP = web.AppKey("resp", RespClient)  # the lean client of the request path's scripts (proxy.resp)
BOX = web.AppKey("box", SecretBox)
AUTHZ = web.AppKey("authz", Authorizer)
UPSTREAM = web.AppKey("upstream", Upstream)
API_HTTP = web.AppKey("api_http", aiohttp.ClientSession)
SINK = web.AppKey("sink", EventSink)
QUOTAS = web.AppKey("quotas", Quotas)
