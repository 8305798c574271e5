"""The OpenAPI document lists every call of docs/design.md's admin API table, served by the real API."""
import json
import urllib.request

EXPECTED = {
    ("post", "/api/v1/auth/register"), ("post", "/api/v1/auth/login"), ("get", "/api/v1/me"),
    ("post", "/api/v1/keys"), ("get", "/api/v1/keys"), ("delete", "/api/v1/keys/{access_key_id}"),
    ("post", "/api/v1/nodes"), ("get", "/api/v1/nodes"), ("delete", "/api/v1/nodes/{name}"),
    ("post", "/api/v1/roots"), ("get", "/api/v1/roots"), ("delete", "/api/v1/roots/{name}"),
    ("post", "/api/v1/workspaces"), ("post", "/api/v1/workspaces/import"), ("get", "/api/v1/workspaces"),
    ("get", "/api/v1/workspaces/{name}"), ("delete", "/api/v1/workspaces/{name}"),
    ("post", "/api/v1/workspaces/{name}/shares"), ("get", "/api/v1/workspaces/{name}/shares"),
    ("delete", "/api/v1/workspaces/{name}/shares/{share_id}"),
    ("post", "/api/v1/groups"), ("post", "/api/v1/groups/{name}/members"),
    ("delete", "/api/v1/groups/{name}/members/{user}"),
    ("post", "/api/v1/users/{username}/disable"), ("post", "/api/v1/users/{username}/enable"),
    ("post", "/api/v1/users/{username}/promote"), ("post", "/api/v1/users/{username}/demote"),
    ("put", "/api/v1/workspaces/{name}/quota"), ("put", "/api/v1/users/{username}/quota"),
    ("get", "/api/v1/workspaces/{name}/usage"), ("get", "/api/v1/search"), ("get", "/api/v1/search/aggregations"),
    ("get", "/api/v1/audit"), ("post", "/api/v1/explain"),
}


def test_openapi_document_covers_the_contract(stack):
    with urllib.request.urlopen(stack.api_url + "/api/v1/openapi.json") as resp:
        doc = json.load(resp)
    assert doc["openapi"].startswith("3.")
    served = {(method, path) for path, ops in doc["paths"].items() for method in ops}
    assert EXPECTED <= served, sorted(EXPECTED - served)
    login = doc["paths"]["/api/v1/auth/login"]["post"]
    assert login["security"] == [] and "Error" in doc["components"]["schemas"]
    assert {p["name"] for p in doc["paths"]["/api/v1/workspaces/{name}/shares/{share_id}"]["delete"]["parameters"]} \
        == {"name", "share_id"}
    removal = doc["paths"]["/api/v1/roots/{name}"]["delete"]
    assert removal["summary"].startswith("Forget a root") and "stay on the node" in removal["description"]
