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
* prometheus-client's multiprocess values call ``os.getpid()`` on every update to notice a fork; the
  process identifier can be replaced only through the value class the library picks at import
  (``prometheus_client.values.ValueClass``, made by ``values.MultiProcessValue(process_identifier=...)``).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web
from prometheus_client import values as prometheus_values

__all__ = ["CountingRequestHandler", "new_counting_handler", "replace_protocol_factory",
           "use_multiprocess_process_identifier"]


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


def use_multiprocess_process_identifier(identify: Callable[[], int]) -> None:
    """Multiprocess metric values made from now on identify their process with ``identify()`` instead of
    an ``os.getpid()`` system call on every update (ids must stay distinct between live processes)."""
    prometheus_values.ValueClass = prometheus_values.MultiProcessValue(process_identifier=identify)
