"""proxy.sts's calls to the admin API, against a real local HTTP server standing in for the API: an
answer with the expected status but no JSON object is a 503, not a 500 from indexing it later."""
from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from proxy.errors import S3Error
from proxy.resources import API_HTTP, SETTINGS
from proxy.sts import _api
from foundation.settings import Settings


@pytest.mark.parametrize("answer", [b"", b"null", b"[]", b'"key"'])
async def test_issue_answer_that_is_not_a_json_object_is_service_unavailable(answer: bytes) -> None:
    async def keys(_request: web.Request) -> web.Response:
        return web.Response(status=201, body=answer, content_type="application/json")

    api = web.Application()
    api.router.add_post("/api/v1/keys", keys)
    runner = web.AppRunner(api)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    proxy = web.Application()
    proxy[SETTINGS] = Settings(database_url="", redis_url="", master_key=b"", jwt_secret="",
                               api_url=f"http://127.0.0.1:{port}")
    try:
        async with aiohttp.ClientSession() as session:
            proxy[API_HTTP] = session
            request = make_mocked_request("POST", "/", app=proxy)
            with pytest.raises(S3Error) as raised:
                await _api(request, "POST", "/api/v1/keys", {}, {"name": "k"}, expect=201)
    finally:
        await runner.cleanup()
    assert raised.value.code == "ServiceUnavailable"
