"""The handlers of the operation table: each row of ``policy.operations`` names its handler as
``module.function`` in proxy/; they are resolved here once, at import (a name that does not resolve
fails the import, and tests/proxy/test_operation_table.py). Authorization already happened in
``proxy.app.authorize``."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import ModuleType

from aiohttp import web

from policy.operations import OPERATIONS
from proxy import buckets, copies, objects, post_object, sts, views
from proxy.call import Call

__all__ = ["Handler", "HANDLERS"]

Handler = Callable[[Call], Awaitable[web.StreamResponse]]

_MODULES: dict[str, ModuleType] = {"buckets": buckets, "copies": copies, "objects": objects,
                                   "post_object": post_object, "sts": sts, "views": views}


def _resolve(name: str) -> Handler:
    module, _, function = name.partition(".")
    handler: Handler = getattr(_MODULES[module], function)
    return handler


HANDLERS: dict[str, Handler] = {op.name: _resolve(op.handler) for op in OPERATIONS}
