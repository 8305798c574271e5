"""The console's API side without a browser: its pages and headers, presigned requests (decided by the
proxy, never by the API), the console key, share links, and the proxy's CORS for the console's origin."""
from __future__ import annotations

import re
import urllib.error
import urllib.parse
import urllib.request

import pytest

from tests.conftest import make_person, unique
from wio.client import ApiClient


def fetch(url: str, method: str = "GET", data: bytes | None = None, headers: dict | None = None):
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def presign(person, workspace: str, *requests: dict) -> list[dict]:
    return person.api.call("POST", "/console/presign", {"workspace": workspace, "requests": list(requests)})["urls"]


def s3_code(body: bytes) -> str:
    match = re.search(rb"<Code>([^<]+)</Code>", body)
    return match.group(1).decode() if match else ""


def test_console_is_served_with_a_strict_policy(stack):
    status, headers, body = fetch(stack.api_url + "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self';" in csp and "unsafe" not in csp and "frame-ancestors 'none'" in csp
    assert f"connect-src 'self' {stack.s3_url}" in csp
    assert headers["X-Frame-Options"] == "DENY" and headers["X-Content-Type-Options"] == "nosniff"
    html = body.decode()
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "no inline script"
    assert not re.search(r"\son[a-z]+\s*=", html), "no inline event handlers"
    modules = ["pages.js", "admin.js", "groups.js", "s3.js", "ui.js"]   # imported by app.js, not named in the page
    for name in re.findall(r'(?:src|href)="/console/([^"]+)"', html) + modules:
        status, headers, body = fetch(f"{stack.api_url}/console/{name}")
        assert status == 200 and headers["Content-Type"].split(";")[0] in ("text/javascript", "text/css"), name
        assert b"http://" not in body and b"https://" not in body, f"{name} loads nothing from elsewhere"
    for bad in ("nope.js", "..%2Fconsole.py", "%2e%2e%2fapp.py"):
        assert fetch(f"{stack.api_url}/console/{bad}")[0] == 404
    # API answers carry the same policy (nothing of the API can be framed).
    assert "frame-ancestors 'none'" in fetch(stack.api_url + "/api/v1/info")[1]["Content-Security-Policy"]


def test_presigning_needs_a_login(stack):
    status, body = ApiClient(stack.api_url).request("POST", "/console/presign",
                                                    {"workspace": "x", "requests": [{"operation": "GetObject", "key": "k"}]})
    assert status == 401 and body["error"]["code"] == "Unauthorized"


@pytest.mark.parametrize("request_, message", [
    ({"operation": "PutBucketPolicy", "key": "k"}, "'operation'"),
    ({"operation": "UploadPart", "key": "k", "upload_id": "u", "part_number": 0}, "part_number"),
    ({"operation": "UploadPart", "key": "k", "part_number": 1}, "upload_id"),
    ({"operation": "GetObject"}, "'key'"),
    ({"operation": "GetObject", "key": 7}, "'key'"),
    ("GetObject", "operation"),
])
def test_presign_refuses_bad_requests(stack, person, workspace, request_, message):
    status, body = person.api.request("POST", "/console/presign", {"workspace": workspace, "requests": [request_]})
    assert status == 400 and message in body["error"]["message"]


def test_presign_refuses_bad_batches(stack, person, workspace):
    for body in ({"workspace": workspace, "requests": []},
                 {"workspace": workspace, "requests": [{"operation": "GetObject", "key": "k"}] * 1001},
                 {"workspace": workspace, "requests": [{"operation": "GetObject", "key": "k"}], "expires_in_seconds": 7200}):
        assert person.api.request("POST", "/console/presign", body)[0] == 400


def test_presigned_requests_are_decided_by_the_proxy_with_the_callers_grants(stack, person, other, workspace):
    put, = presign(person, workspace, {"operation": "PutObject", "key": "dir/a b+c.txt"})
    assert put["method"] == "PUT" and put["url"].startswith(stack.s3_url + "/")
    assert fetch(put["url"], "PUT", b"hello")[0] == 200
    listing, = presign(person, workspace, {"operation": "ListObjectsV2", "prefix": "dir/", "delimiter": "/"})
    status, _, body = fetch(listing["url"])
    assert status == 200 and b"<Key>dir/a b+c.txt</Key>" in body
    download, = presign(person, workspace, {"operation": "GetObject", "key": "dir/a b+c.txt", "download_as": "a b+c.txt"})
    status, headers, body = fetch(download["url"])
    assert status == 200 and body == b"hello"
    assert headers["Content-Disposition"] == "attachment; filename*=UTF-8''a%20b%2Bc.txt"

    # The API signs for anyone logged in; the proxy refuses what the signer may not do.
    theirs, = presign(other, workspace, {"operation": "GetObject", "key": "dir/a b+c.txt"})
    status, _, body = fetch(theirs["url"])
    assert status == 403 and s3_code(body) == "AccessDenied"
    share = person.api.call("POST", f"/workspaces/{workspace}/shares", {"user": other.name, "permission": "read"})
    assert fetch(theirs["url"])[0] == 200            # the same URL, now allowed ...
    write, = presign(other, workspace, {"operation": "PutObject", "key": "x"})
    assert fetch(write["url"], "PUT", b"x")[0] == 403   # ... for reading only
    person.api.call("DELETE", f"/workspaces/{workspace}/shares/{share['id']}")
    assert fetch(theirs["url"])[0] == 403            # revoked on the next request

    delete, = presign(person, workspace, {"operation": "DeleteObject", "key": "dir/a b+c.txt"})
    assert fetch(delete["url"], "DELETE")[0] == 204
    assert fetch(download["url"])[0] == 404


def test_multipart_upload_through_presigned_requests(stack, person, workspace):
    create, = presign(person, workspace, {"operation": "CreateMultipartUpload", "key": "big"})
    status, _, body = fetch(create["url"], "POST")
    assert status == 200
    upload_id = re.search(rb"<UploadId>([^<]+)</UploadId>", body).group(1).decode()
    parts = presign(person, workspace, *({"operation": "UploadPart", "key": "big", "upload_id": upload_id, "part_number": n}
                                        for n in (1, 2)))
    etags = []
    for part, data in zip(parts, (b"a" * (5 << 20), b"b" * 10), strict=True):
        status, headers, _ = fetch(part["url"], "PUT", data)
        assert status == 200
        etags.append(headers["ETag"])
    complete, = presign(person, workspace, {"operation": "CompleteMultipartUpload", "key": "big", "upload_id": upload_id})
    xml = "".join(f"<Part><PartNumber>{n}</PartNumber><ETag>{e}</ETag></Part>" for n, e in enumerate(etags, 1))
    status, _, body = fetch(complete["url"], "POST", f"<CompleteMultipartUpload>{xml}</CompleteMultipartUpload>".encode())
    assert status == 200 and b"<Error>" not in body
    assert person.s3.head_object(Bucket=workspace, Key="big")["ContentLength"] == (5 << 20) + 10


def test_the_console_key_is_reused_marked_and_its_name_reserved(stack, person, workspace):
    first, second = (presign(person, workspace, {"operation": "GetObject", "key": "k"})[0]["url"] for _ in range(2))
    credential = [urllib.parse.parse_qs(urllib.parse.urlsplit(u).query)["X-Amz-Credential"][0].split("/")[0]
                  for u in (first, second)]
    assert credential[0] == credential[1]
    keys = {k["access_key_id"]: k for k in person.api.call("GET", "/keys")["keys"]}
    assert keys[credential[0]]["purpose"] == "console" and keys[credential[0]]["expires_at"]
    assert keys[person.key["access_key_id"]]["purpose"] is None
    status, body = person.api.request("POST", "/keys", {"name": "wio:console"})
    assert status == 400 and "reserved" in body["error"]["message"]
    # Deleting it is allowed (it is the user's key); the next presign makes another.
    person.api.call("DELETE", f"/keys/{credential[0]}")
    assert fetch(first)[0] == 403
    third = presign(person, workspace, {"operation": "GetObject", "key": "k"})[0]["url"]
    assert credential[0] not in third


def test_share_links_work_without_an_account_until_revoked(stack, person, other, workspace):
    person.s3.put_object(Bucket=workspace, Key="data/report.csv", Body=b"a,b\n1,2\n")
    person.s3.put_object(Bucket=workspace, Key="data/secret.csv", Body=b"no")
    link = person.api.call("POST", f"/workspaces/{workspace}/links", {"key": "data/report.csv", "expires_in_seconds": 3600})
    assert link["key"] == "data/report.csv" and link["url"].startswith(f"{stack.s3_url}/{workspace}/data/report.csv?")
    status, headers, body = fetch(link["url"])
    assert status == 200 and body == b"a,b\n1,2\n" and "report.csv" in headers["Content-Disposition"]
    # The URL opens that object only: another key under the same signature is refused.
    assert fetch(link["url"].replace("report.csv", "secret.csv"))[0] == 403
    listed = person.api.call("GET", f"/workspaces/{workspace}/links")["links"]
    assert [(x["id"], x["key"], x["created_by"]) for x in listed] == [(link["id"], "data/report.csv", person.name)]
    assert "url" not in listed[0]            # shown once, like a secret
    purposes = {k["access_key_id"]: k["purpose"] for k in person.api.call("GET", "/keys")["keys"]}
    assert purposes[link["id"]] == "share-link"

    # Only the workspace's admins make, see and revoke links.
    assert other.api.request("POST", f"/workspaces/{workspace}/links", {"key": "data/report.csv"})[0] == 404
    person.api.call("POST", f"/workspaces/{workspace}/shares", {"user": other.name, "permission": "read"})
    status, body = other.api.request("POST", f"/workspaces/{workspace}/links", {"key": "data/report.csv"})
    assert status == 403 and body["error"]["code"] == "Forbidden"
    assert other.api.request("GET", f"/workspaces/{workspace}/links")[0] == 403
    assert other.api.request("DELETE", f"/workspaces/{workspace}/links/{link['id']}")[0] == 403

    person.api.call("DELETE", f"/workspaces/{workspace}/links/{link['id']}")
    status, _, body = fetch(link["url"])
    assert status == 403 and s3_code(body) == "InvalidAccessKeyId"
    assert person.api.request("DELETE", f"/workspaces/{workspace}/links/{link['id']}")[0] == 404
    assert person.api.call("GET", f"/workspaces/{workspace}/links")["links"] == []


@pytest.mark.parametrize("body", [{"key": "k", "expires_in_seconds": 30}, {"key": "k", "expires_in_seconds": 8 * 86400},
                                  {"key": "dir/"}, {"key": ""}, {}])
def test_share_links_refuse_bad_input(stack, person, workspace, body):
    assert person.api.request("POST", f"/workspaces/{workspace}/links", body)[0] == 400


def test_a_link_never_outlives_its_creators_access(stack, person, workspace):
    """A link reads with its creator's grants: when a delegated admin loses the workspace, their links die."""
    deputy = make_person(stack, "deputy")
    person.s3.put_object(Bucket=workspace, Key="f", Body=b"x")
    share = person.api.call("POST", f"/workspaces/{workspace}/shares", {"user": deputy.name, "permission": "admin"})
    link = deputy.api.call("POST", f"/workspaces/{workspace}/links", {"key": "f"})
    assert fetch(link["url"])[0] == 200
    person.api.call("DELETE", f"/workspaces/{workspace}/shares/{share['id']}")
    assert fetch(link["url"])[0] == 403
    # The owner sees and revokes the deputy's link.
    assert [x["created_by"] for x in person.api.call("GET", f"/workspaces/{workspace}/links")["links"]] == [deputy.name]
    person.api.call("DELETE", f"/workspaces/{workspace}/links/{link['id']}")


def test_proxy_cors_only_for_the_console_and_only_for_presigned_requests(stack, person, workspace):
    origin = stack.api_url
    get, = presign(person, workspace, {"operation": "GetObject", "key": "k"})
    person.s3.put_object(Bucket=workspace, Key="k", Body=b"v")

    def preflight(url: str, origin: str, method: str = "PUT", request_headers: str = "content-type"):
        return fetch(url, "OPTIONS", headers={"Origin": origin, "Access-Control-Request-Method": method,
                                              "Access-Control-Request-Headers": request_headers})

    status, headers, _ = preflight(get["url"], origin)
    assert status == 204 and headers["Access-Control-Allow-Origin"] == origin
    assert "Access-Control-Allow-Credentials" not in headers
    for refused in (preflight(get["url"], "http://evil.example"),
                    preflight(get["url"], origin.replace("127.0.0.1", "localhost")),
                    preflight(get["url"].split("?")[0], origin),                             # not presigned
                    preflight(get["url"], origin, request_headers="x-amz-meta-owner"),       # a header nobody signed
                    preflight(get["url"], origin, method="PATCH")):
        assert refused[0] == 403 and "Access-Control-Allow-Origin" not in refused[1]
        assert s3_code(refused[2]) == "AccessDenied"
    # An OPTIONS that is no preflight is S3's business, as it always was.
    status, headers, body = fetch(get["url"], "OPTIONS", headers={"Origin": origin})
    assert status >= 400 and s3_code(body) and "Access-Control-Allow-Origin" not in headers

    status, headers, body = fetch(get["url"], headers={"Origin": origin})
    assert status == 200 and body == b"v" and headers["Access-Control-Allow-Origin"] == origin
    assert "ETag" in headers["Access-Control-Expose-Headers"]
    status, headers, _ = fetch(get["url"], headers={"Origin": "http://evil.example"})
    assert status == 200 and "Access-Control-Allow-Origin" not in headers
    # Any presigned URL (boto3's too) is what the console may read; a request without one gets nothing.
    signed = person.s3.generate_presigned_url("get_object", Params={"Bucket": workspace, "Key": "k"})
    assert "Access-Control-Allow-Origin" in fetch(signed, headers={"Origin": origin})[1]
    # A request signed in headers (the CLI's way, which a page could not make) gets no CORS headers.
    person.s3.meta.events.register("before-send.s3.GetObject",
                                   lambda request, **_: request.headers.__setitem__("Origin", origin))
    answer = person.s3.get_object(Bucket=workspace, Key="k")["ResponseMetadata"]["HTTPHeaders"]
    assert "access-control-allow-origin" not in answer
    unsigned = fetch(f"{stack.s3_url}/{workspace}/k", headers={"Origin": origin})
    assert unsigned[0] == 403 and "Access-Control-Allow-Origin" not in unsigned[1]
    # Errors a page must read (403, QuotaExceeded) carry the header too.
    missing, = presign(person, workspace, {"operation": "GetObject", "key": unique("missing")})
    status, headers, _ = fetch(missing["url"], headers={"Origin": origin})
    assert status == 404 and headers["Access-Control-Allow-Origin"] == origin


def test_folder_links_list_and_download_inside_their_folder_only(stack, person, workspace):
    for key in ("results/a.csv", "results/deep/b.csv", "private/c.csv"):
        person.s3.put_object(Bucket=workspace, Key=key, Body=key.encode())
    link = person.api.call("POST", f"/workspaces/{workspace}/links", {"prefix": "results/", "expires_in_seconds": 600})
    assert link["prefix"] == "results/" and link["url"].startswith(f"{stack.api_url}/#/link/{link['id']}/")
    token = link["url"].rsplit("/", 1)[1]
    anonymous = ApiClient(stack.api_url)

    def sign(*requests, token=token):
        return anonymous.request("POST", f"/links/{link['id']}/presign", {"token": token, "requests": list(requests)})

    status, info = sign()
    assert status == 200 and (info["workspace"], info["prefix"], info["urls"]) == (workspace, "results/", [])
    status, out = sign({"operation": "ListObjectsV2", "prefix": "results/", "delimiter": "/"},
                       {"operation": "GetObject", "key": "results/deep/b.csv"})
    assert status == 200
    listing, download = out["urls"]
    status, _, body = fetch(listing["url"])
    assert status == 200 and b"<Key>results/a.csv</Key>" in body and b"<Prefix>results/deep/</Prefix>" in body
    assert fetch(download["url"])[2] == b"results/deep/b.csv"
    # Outside the folder, other operations, a wrong token: refused.
    assert sign({"operation": "GetObject", "key": "private/c.csv"})[0] == 403
    assert sign({"operation": "ListObjectsV2", "prefix": ""})[0] == 403
    assert sign({"operation": "PutObject", "key": "results/x"})[0] == 400
    assert sign(token="0" * 64)[0] == 404
    # Even a URL for another key made with the link's signature fails at the proxy.
    assert fetch(download["url"].replace("results/deep/b.csv", "private/c.csv"))[0] == 403
    # An object link has no page.
    one = person.api.call("POST", f"/workspaces/{workspace}/links", {"key": "results/a.csv"})
    from admin_api.console import link_token
    assert anonymous.request("POST", f"/links/{one['id']}/presign",
                             {"token": link_token(stack.settings, one["id"]), "requests": []})[0] == 404
    listed = person.api.call("GET", f"/workspaces/{workspace}/links")["links"]
    assert {x.get("prefix") or x.get("key") for x in listed} == {"results/", "results/a.csv"}

    person.api.call("DELETE", f"/workspaces/{workspace}/links/{link['id']}")
    assert sign()[0] == 404
    assert fetch(download["url"])[0] == 403     # URLs handed out before the revocation die with it


@pytest.mark.parametrize("body", [{"prefix": "results"}, {"prefix": "/x/"}, {"key": "a", "prefix": "b/"}])
def test_folder_links_refuse_bad_input(stack, person, workspace, body):
    assert person.api.request("POST", f"/workspaces/{workspace}/links", body)[0] == 400
