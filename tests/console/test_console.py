"""The console in a real browser (Chromium, headless) against the real stack: the README's walk-through.

Uploads go from the page straight to the S3 proxy with presigned requests; the test checks the bytes
that arrive, the progress bar, sharing with a second user and its revocation, a share link that works
and then answers 403, a key made in the page and used with boto3, and the messages for 403 and
QuotaExceeded. Screenshots of the main pages are taken on every run (into pytest's temporary directory);
with WIO_UPDATE_SCREENSHOTS=1 they also replace docs/screenshots/ (shown in README.md).
"""
from __future__ import annotations

import hashlib
import os
import re
import secrets
import urllib.error
import urllib.request

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import ADMIN_PASSWORD, make_person, s3_client, unique
from wio.client import ApiClient

TIMEOUT_MS = 20_000
expect.set_options(timeout=TIMEOUT_MS)
BIG = 12 * 1024 * 1024


def _open(browser, stack) -> Page:
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 800})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=stack.api_url)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.on("dialog", lambda dialog: dialog.accept())
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" and "Content Security" in msg.text
            else None)
    page.csp_errors = errors   # type: ignore[attr-defined]
    page.goto(stack.api_url + "/")
    return page


def _log_in(page: Page, username: str, password: str) -> None:
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Workspaces")).to_be_visible()


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def alice_s3(stack, api: ApiClient):
    return s3_client(stack.s3_url, api.call("POST", "/keys", {"name": "check"}))


@pytest.fixture
def big_file(tmp_path):
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(BIG))
    return path


def test_console_walkthrough(stack, browser, big_file, tmp_path, screenshot):
    alice, password = unique("alice"), secrets.token_urlsafe(12)
    bob = make_person(stack, "bob")

    # Register and log in (the register page logs the new user in), log out, log in again.
    page = _open(browser, stack)
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    screenshot(page, "login")
    page.get_by_role("link", name="Register").click()
    page.get_by_label("Username").fill(alice)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_role("heading", name="Workspaces")).to_be_visible()
    expect(page.get_by_role("status")).to_have_text(f"Welcome, {alice}.")
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("status")).to_have_text("You are logged out.")
    _log_in(page, alice, password)

    # A workspace.
    ws = unique("console")
    page.get_by_text("New workspace").click()
    page.get_by_label("Workspace name").fill(ws)
    page.get_by_role("button", name="Create workspace").click()
    expect(page.get_by_role("heading", name=f"Workspace {ws}")).to_be_visible()

    # Upload 12 MiB (multipart, from the browser to the proxy) and a small file in a folder.
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Upload").click()
    chooser.value.set_files(str(big_file))
    bar = page.get_by_label("Upload progress for big.bin")
    expect(bar).to_have_attribute("value", "100")
    expect(page.get_by_text("100 %")).to_be_visible()
    expect(page.get_by_role("cell", name="big.bin", exact=True)).to_be_visible()
    expect(page.get_by_role("cell", name="12.0 MiB")).to_be_visible()
    page.get_by_label("Folder name").fill("results")
    page.get_by_role("button", name="Open folder").click()
    notes = tmp_path / "notes.txt"
    notes.write_text("measurements\n")
    page.get_by_label("Files to upload").set_input_files(str(notes))
    expect(page.get_by_role("cell", name="notes.txt", exact=True)).to_be_visible()
    page.get_by_role("navigation", name="Breadcrumbs").get_by_role("link", name=ws).click()
    expect(page.get_by_role("link", name="results/", exact=True)).to_be_visible()
    screenshot(page, "workspace-browser")

    # Download it: the same bytes.
    with page.expect_download() as download:
        page.get_by_role("button", name="Download big.bin").click()
    saved = tmp_path / "downloaded.bin"
    download.value.save_as(saved)
    assert hashlib.sha256(saved.read_bytes()).digest() == hashlib.sha256(big_file.read_bytes()).digest()

    # Share it with bob (read), who then sees it in his own browser.
    page.get_by_role("link", name="Sharing").click()
    page.get_by_label("User or group name").fill(bob.name)
    page.get_by_label("Permission").select_option("read")
    page.get_by_role("button", name="Add share").click()
    expect(page.get_by_role("cell", name=f"user {bob.name}", exact=True)).to_be_visible()
    bob_page = _open(browser, stack)
    _log_in(bob_page, bob.name, bob.password)
    # (his list may hold public workspaces of other tests too: the row of this one says "read")
    expect(bob_page.get_by_role("row").filter(has=bob_page.get_by_role("link", name=ws, exact=True))
           .get_by_role("cell", name="read", exact=True)).to_be_visible()
    bob_page.get_by_role("link", name=ws, exact=True).click()
    expect(bob_page.get_by_role("cell", name="big.bin", exact=True)).to_be_visible()
    # Bob may read, not write: the proxy's 403 is shown in words.
    bob_page.get_by_label("Files to upload").set_input_files(str(notes))
    expect(bob_page.get_by_role("alert").filter(has_text="Access denied").first).to_be_visible()

    # Revoke: bob's next listing has no workspace.
    page.get_by_role("button", name=f"Remove share with user {bob.name}").click()
    expect(page.get_by_role("cell", name=f"user {bob.name}", exact=True)).to_have_count(0)
    bob_page.get_by_role("link", name="Workspaces").click()
    expect(bob_page.get_by_role("heading", name="Workspaces")).to_be_visible()
    expect(bob_page.get_by_role("link", name=ws)).to_have_count(0)

    # A share link: works without an account, then 403 once revoked.
    page.get_by_role("link", name=ws).first.click()
    page.get_by_role("button", name="Share link for big.bin").click()
    expect(page.get_by_label("Object key or folder")).to_have_value("big.bin")
    page.get_by_role("button", name="Create link").click()
    url = page.get_by_label("Share link URL").input_value()
    assert url.startswith(stack.s3_url)
    screenshot(page, "sharing")
    status, body = _get(url)
    assert status == 200 and hashlib.sha256(body).digest() == hashlib.sha256(big_file.read_bytes()).digest()
    page.get_by_role("button", name="Revoke link to big.bin").click()
    expect(page.get_by_role("button", name="Revoke link to big.bin")).to_have_count(0)
    status, body = _get(url)
    assert status == 403, body

    # A folder link: a page anyone opens without an account, listing and downloading inside the folder only.
    page.get_by_label("Link to").select_option("prefix")
    page.get_by_label("Object key or folder").fill("results/")
    page.get_by_role("button", name="Create link").click()
    folder_url = page.get_by_label("Share link URL").input_value()
    assert folder_url.startswith(stack.api_url + "/#/link/")
    stranger = browser.new_context(accept_downloads=True).new_page()
    stranger.set_default_timeout(TIMEOUT_MS)
    stranger.goto(folder_url)
    expect(stranger.get_by_role("heading", name="Shared folder results/")).to_be_visible()
    expect(stranger.get_by_role("cell", name="big.bin")).to_have_count(0)
    with stranger.expect_download() as download:
        stranger.get_by_role("button", name="Download notes.txt").click()
    download.value.save_as(tmp_path / "notes-link.txt")
    assert (tmp_path / "notes-link.txt").read_text() == "measurements\n"
    screenshot(stranger, "folder-link")
    page.get_by_role("button", name="Revoke link to results/").click()
    expect(page.get_by_role("button", name="Revoke link to results/")).to_have_count(0)
    stranger.reload()
    expect(stranger.get_by_role("alert")).to_contain_text("has expired or was revoked")

    # An access key, used with boto3.
    page.get_by_role("link", name="Access keys").click()
    page.get_by_label("Key name").fill("laptop")
    page.get_by_role("button", name="Create key").click()
    key_id = page.get_by_test_id("access-key-id").inner_text()
    secret = page.get_by_test_id("secret-access-key").inner_text()
    expect(page.get_by_label("aws snippet")).to_contain_text(key_id)
    expect(page.get_by_label("rclone snippet")).to_contain_text(stack.s3_url)
    page.get_by_role("button", name="Copy secret access key").click()
    assert page.evaluate("navigator.clipboard.readText()") == secret
    screenshot(page, "access-keys")
    s3 = s3_client(stack.s3_url, {"access_key_id": key_id, "secret_access_key": secret})
    listed = s3.list_objects_v2(Bucket=ws)
    assert {o["Key"] for o in listed["Contents"]} == {"big.bin", "results/notes.txt"}
    page.get_by_role("button", name=f"Delete key {key_id}").click()
    expect(page.get_by_role("button", name=f"Delete key {key_id}")).to_have_count(0)

    # A quota: the refusal is worded, and the workspace list shows usage against it.
    page.get_by_role("link", name="Workspaces").click()
    page.get_by_role("link", name=ws).click()
    alice_api = ApiClient(stack.api_url)
    alice_api.login(alice, password)
    alice_api.call("PUT", f"/workspaces/{ws}/quota", {"max_bytes": BIG + 100})
    page.get_by_label("Files to upload").set_input_files(str(big_file))
    expect(page.get_by_role("alert").filter(has_text="Quota exceeded").first).to_be_visible()
    page.get_by_role("link", name="Workspaces").click()
    expect(page.get_by_label(f"Usage of {ws}")).to_be_visible()
    screenshot(page, "workspaces")

    # Delete with confirmation.
    page.get_by_role("link", name=ws).click()
    page.get_by_role("button", name="Delete big.bin").click()
    expect(page.get_by_role("cell", name="big.bin", exact=True)).to_have_count(0)
    assert "Contents" not in alice_s3(stack, alice_api).list_objects_v2(Bucket=ws, Prefix="big")
    assert page.csp_errors == [] and bob_page.csp_errors == []


def test_operator_pages(stack, browser, screenshot):
    bob = make_person(stack, "bob")
    ws = unique("ops")
    bob.api.call("POST", "/workspaces", {"name": ws})
    page = _open(browser, stack)
    _log_in(page, "admin", ADMIN_PASSWORD)

    page.get_by_role("link", name="Users").click()
    page.get_by_role("button", name=f"Disable {bob.name}").click()
    expect(page.get_by_role("button", name=f"Enable {bob.name}")).to_be_visible()
    assert bob.api.request("GET", "/me")[0] == 403
    screenshot(page, "users")
    page.get_by_role("button", name=f"Enable {bob.name}").click()
    expect(page.get_by_role("button", name=f"Disable {bob.name}")).to_be_visible()
    assert bob.api.request("GET", "/me")[0] == 200

    page.get_by_role("link", name="Nodes").click()
    expect(page.get_by_role("table", name="Storage nodes")).to_be_visible()
    page.get_by_role("link", name="Roots").click()
    expect(page.get_by_role("table", name="Roots")).to_be_visible()

    page.get_by_role("link", name="Quotas").click()
    page.get_by_label("Quota of").select_option("workspace")
    page.get_by_label("Name", exact=True).fill(ws)
    page.get_by_label("Maximum size").fill("2 GiB")
    page.get_by_role("button", name="Set quota").click()
    expect(page.get_by_text(re.compile(r"limit 2\.0 GiB"))).to_be_visible()

    bob.s3.put_object(Bucket=ws, Key="a.txt", Body=b"x")
    page.get_by_role("link", name="Audit").click()
    page.get_by_label("Workspace").fill(ws)
    for _ in range(60):   # the audit trail is written off the request path: poll the page
        page.get_by_role("button", name="Filter").click()
        page.wait_for_timeout(500)
        if page.get_by_role("cell", name="PutObject").count():
            break
    expect(page.get_by_role("cell", name="PutObject").first).to_be_visible()
    screenshot(page, "audit")

    page.get_by_role("link", name="Explain").click()
    page.get_by_label("User").fill(bob.name)
    page.get_by_label("Operation").select_option("GetObject")
    page.get_by_label("Workspace").fill(ws)
    page.get_by_label("Object key").fill("a.txt")
    page.get_by_role("button", name="Explain").click()
    expect(page.get_by_text(f"{bob.name} may GetObject")).to_be_visible()
    # "Why can't carol write here?": she reads results/ only.
    carol = make_person(stack, "carol")
    bob.api.call("POST", f"/workspaces/{ws}/shares", {"user": carol.name, "permission": "read", "prefix": "results/"})
    page.get_by_label("User").fill(carol.name)
    page.get_by_label("Operation").select_option("PutObject")
    page.get_by_label("Object key").fill("results/new.csv")
    page.get_by_role("button", name="Explain").click()
    expect(page.get_by_text(f"{carol.name} may not PutObject")).to_be_visible()
    expect(page.get_by_role("cell", name="results/", exact=True)).to_be_visible()   # the grant it weighed
    screenshot(page, "explain")
    expect(page.get_by_role("link", name="Users")).to_be_visible()
    page.get_by_role("link", name="Users").click()
    expect(page.get_by_role("button", name="Disable admin", exact=True)).to_have_count(0)   # no locking yourself out


def test_drag_and_drop_several_files_and_search(stack, browser, screenshot):
    owner = make_person(stack, "dana")
    ws = unique("drop")
    owner.api.call("POST", "/workspaces", {"name": ws})
    page = _open(browser, stack)
    _log_in(page, owner.name, owner.password)
    page.get_by_role("link", name=ws).click()
    files = {"plate-01.csv": "well,value\nA1,0.5\n", "plate-02.csv": "well,value\nA2,0.7\n", "readme.md": "# plates\n"}
    transfer = page.evaluate_handle("""(files) => {
        const dt = new DataTransfer();
        for (const [name, text] of Object.entries(files)) dt.items.add(new File([text], name, {type: 'text/plain'}));
        return dt;
    }""", files)
    page.get_by_role("region", name="Drop files here to upload").dispatch_event("drop", {"dataTransfer": transfer})
    for name in files:
        expect(page.get_by_label(f"Upload progress for {name}")).to_have_attribute("value", "100")
        expect(page.get_by_role("cell", name=name, exact=True)).to_be_visible()
    stored = {o["Key"]: o["Size"] for o in owner.s3.list_objects_v2(Bucket=ws)["Contents"]}
    assert stored == {name: len(text) for name, text in files.items()}

    # Search with facets (the indexer follows the proxy's events within seconds).
    page.get_by_role("link", name="Search").click()
    page.get_by_label("Search text").fill("plate")
    for _ in range(60):
        page.get_by_role("button", name="Search").click()
        page.wait_for_timeout(500)
        if page.get_by_role("cell", name="plate-02.csv").count():
            break
    expect(page.get_by_role("cell", name="plate-01.csv")).to_be_visible()
    expect(page.get_by_role("complementary", name="Facets").get_by_role("button", name=re.compile(rf"^{ws} \(2,"))) \
        .to_be_visible()
    screenshot(page, "search")
