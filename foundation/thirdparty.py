"""Every use of a third-party library's private attributes, in one place.

wio uses the public API of its libraries everywhere else. Two needs have no public way, and what they
touch is listed here and asserted by ``tests/test_thirdparty_adapter.py``, so an upgrade that renames
one of these attributes fails that test instead of a production server:

* aiohttp has no header-read timeout (``wio/serve.py``'s slowloris guard). The guard builds each
  connection's request handler itself, the way ``web.Server.__call__`` does (the server's loop and its
  handler keyword arguments: ``Server._loop``, ``Server._kwargs``), replaces the runner's protocol
  factory (``AppRunner._server``, read publicly as ``AppRunner.server``), and reads per connection how
  many requests it has completed and whether one is being served (``RequestHandler._request_count``,
  ``RequestHandler._current_request``).
* The proxy serves S3 without aiohttp's router and middleware chain (``proxy.app.front_door``): its one
  handler becomes the runner's server's ``request_handler`` (a public attribute of ``web.Server``), and
  each request is given the app it belongs to the way ``Application._handle`` does after routing: a
  match info made once for the app, frozen, assigned to the request (``Request._match_info``), so that
  ``request.app`` and the app's ``on_response_prepare`` signal work as on a routed request; for requests
  whose signal receivers have nothing to do, a second match info without the app in its list of apps
  (``UrlMappingMatchInfo._apps``, what ``Request._prepare_hook`` walks) skips the signal.
* prometheus-client's multiprocess values call ``os.getpid()`` on every update to notice a fork; the
  process identifier can be replaced only through the value class the library picks at import
  (``prometheus_client.values.ValueClass``, made by ``values.MultiProcessValue(process_identifier=...)``).
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import values as prometheus_values

__all__ = ["CountingRequestHandler", "new_counting_handler", "replace_protocol_factory",
           "use_multiprocess_process_identifier", "AppMatch", "app_match", "serve_without_router"]


class CountingRequestHandler(web.RequestHandler):
    """aiohttp's request handler (one per connection), counting the reads it gets, so an idle connection
    can be told apart from one whose next request's headers are trickling in."""
    __slots__ = ("wio_reads",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.wio_reads = 0

    def data_received(self, data: bytes) -> None:
        self.wio_reads += 1
        super().data_received(data)

    @property
    def completed_requests(self) -> int:
        """Requests whose headers arrived complete on this connection so far."""
        return self._request_count

    @property
    def serving(self) -> bool:
        """Is a request being handled on this connection now?"""
        return self._current_request is not None


def new_counting_handler(server: web.Server) -> CountingRequestHandler:
    """What ``web.Server.__call__`` does for a new connection, with the counting handler."""
    return CountingRequestHandler(server, loop=server._loop, **server._kwargs)


def replace_protocol_factory(runner: web.AppRunner, wrap: Callable[[web.Server], Any]) -> None:
    """After ``runner.setup()``: the sites the runner starts from now on call ``wrap(server)`` (which
    forwards every other attribute to ``server``) for each new connection."""
    server = runner.server
    if server is None:
        raise RuntimeError("replace_protocol_factory: call runner.setup() first")
    runner._server = wrap(server)


class AppMatch:
    """What routing gives a request of one application (``request.app``, its response signals), made once
    and shared by every request (it is frozen: nothing changes it)."""
    __slots__ = ("_match", "_quiet")

    def __init__(self, match: web.UrlMappingMatchInfo, quiet: web.UrlMappingMatchInfo):
        self._match, self._quiet = match, quiet

    def attach(self, request: web.BaseRequest, *, response_signals: bool = True) -> web.Request:
        """The request, as the app's ``web.Request`` (the server's factory makes ``web.Request`` objects).
        ``response_signals=False``: the app's ``on_response_prepare`` does not run for this request (the
        caller knows its receivers have nothing to do for it); ``request.app`` is the app all the same."""
        if not isinstance(request, web.Request):
            raise TypeError(f"{type(request).__name__} is not an application's web.Request")
        request._match_info = self._match if response_signals else self._quiet
        return request


async def _not_routed(request: web.Request) -> web.StreamResponse:
    raise RuntimeError("this application is served without its router")


def app_match(app: web.Application) -> AppMatch:
    """The match info of a catch-all route of ``app`` (never resolved: requests do not go through the router),
    and the same without the app in its list of apps (``UrlMappingMatchInfo._apps``, which
    ``Request._prepare_hook`` walks to send ``on_response_prepare``; ``current_app`` stays the app)."""
    route = web.ResourceRoute("*", _not_routed, web.DynamicResource("/{tail:.*}"))
    match, quiet = web.UrlMappingMatchInfo({}, route), web.UrlMappingMatchInfo({}, route)
    match.add_app(app)
    quiet.add_app(app)
    quiet._apps.clear()
    match.freeze()
    quiet.freeze()
    return AppMatch(match, quiet)


def serve_without_router(runner: web.AppRunner,
                         handler: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]) -> None:
    """After ``runner.setup()``, before any site starts: each request goes to ``handler`` alone: no router,
    no middleware, no ``Expect`` handling (``handler`` does what the app's ``_handle`` did). The app's
    startup and cleanup (``cleanup_ctx``) still run through the runner."""
    server = runner.server
    if server is None:
        raise RuntimeError("serve_without_router: call runner.setup() first")
    server.request_handler = handler


def use_multiprocess_process_identifier(identify: Callable[[], int]) -> None:
    """Multiprocess metric values made from now on identify their process with ``identify()`` instead of
    an ``os.getpid()`` system call on every update (ids must stay distinct between live processes)."""
    prometheus_values.ValueClass = prometheus_values.MultiProcessValue(process_identifier=identify)
