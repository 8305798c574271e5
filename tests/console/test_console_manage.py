"""The console's management pages in a real browser (Chromium, headless) against the real stack: groups
(membership that grants and revokes through a share), an operator registering a node and creating a
root (with the API's refusals, the SSRF guard's among them, shown in words), and a login that expires.
"""
from __future__ import annotations

import time

from botocore.exceptions import ClientError
from playwright.sync_api import Page, expect

from admin_api.security import issue_token
from tests.conftest import ADMIN_PASSWORD, make_person, s3_client, unique
from tests.console.test_console import TIMEOUT_MS, _log_in, _open

expect.set_options(timeout=TIMEOUT_MS)


def _nav(page: Page, name: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name, exact=True).click()


def _denied(s3, bucket: str, key: str) -> bool:
    try:
        s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        return False
    except ClientError as exc:
        return exc.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_groups_page(stack, browser, screenshot):
    owner, bob = make_person(stack, "gina"), make_person(stack, "bob")
    ws, group = unique("lab"), unique("lab")
    owner.api.call("POST", "/workspaces", {"name": ws})
    owner.s3.put_object(Bucket=ws, Key="data.csv", Body=b"a,b\n1,2\n")
    page = _open(browser, stack)
    _log_in(page, owner.name, owner.password)
    _nav(page, "Groups")
    expect(page.get_by_role("heading", name="Groups")).to_be_visible()

    # The API's naming rule, in words; then a group.
    page.get_by_label("Group name").fill("Not a group")
    page.get_by_role("button", name="Create group").click()
    expect(page.get_by_role("alert")).to_contain_text("group names are 1-63 lowercase letters")
    page.get_by_label("Group name").fill(group)
    page.get_by_role("button", name="Create group").click()
    expect(page.get_by_role("cell", name=group, exact=True)).to_be_visible()
    expect(page.get_by_role("status")).to_have_text(f"Group {group} created.")

    # Members: an unknown user is refused in words; bob is added.
    page.get_by_label(f"New member of {group}").fill("nobody-" + unique("x"))
    page.get_by_role("button", name=f"Add member to {group}").click()
    expect(page.get_by_role("alert")).to_contain_text("no user named")
    page.get_by_label(f"New member of {group}").fill(bob.name)
    page.get_by_role("button", name=f"Add member to {group}").click()
    expect(page.get_by_role("list", name=f"Members of {group}")).to_contain_text(bob.name)

    # Share the workspace with the group (the Sharing page): bob reads through his membership.
    assert _denied(bob.s3, ws, "data.csv")
    _nav(page, "Workspaces")
    page.get_by_role("link", name=ws).click()
    page.get_by_role("link", name="Sharing").click()
    page.get_by_label("Share with").select_option("group")
    page.get_by_label("User or group name").fill(group)
    page.get_by_label("Permission").select_option("read")
    page.get_by_role("button", name="Add share").click()
    expect(page.get_by_role("cell", name=f"group {group}", exact=True)).to_be_visible()
    assert bob.s3.get_object(Bucket=ws, Key="data.csv")["Body"].read() == b"a,b\n1,2\n"

    # Bob sees the group he is in, and cannot change it.
    bob_page = _open(browser, stack)
    _log_in(bob_page, bob.name, bob.password)
    _nav(bob_page, "Groups")
    expect(bob_page.get_by_role("cell", name=group, exact=True)).to_be_visible()
    expect(bob_page.get_by_role("cell", name=f"managed by {owner.name}")).to_be_visible()
    expect(bob_page.get_by_role("button", name=f"Delete group {group}")).to_have_count(0)
    expect(bob_page.get_by_role("button", name=f"Remove {bob.name} from {group}")).to_have_count(0)

    # Removing bob from the group takes his access away on his next request.
    page.get_by_role("link", name="make a group").click()
    expect(page.get_by_role("heading", name="Groups")).to_be_visible()
    screenshot(page, "groups")
    page.get_by_role("button", name=f"Remove {bob.name} from {group}").click()
    expect(page.get_by_role("list", name=f"Members of {group}")).to_have_count(0)
    expect(page.get_by_role("status")).to_have_text(f"{bob.name} removed from {group}.")
    assert _denied(bob.s3, ws, "data.csv")

    # Deleting the group (after a confirmation) deletes the shares made to it.
    page.get_by_role("button", name=f"Delete group {group}").click()
    expect(page.get_by_role("cell", name=group, exact=True)).to_have_count(0)
    assert group not in {g["name"] for g in owner.api.call("GET", "/groups")["groups"]}
    assert not owner.api.call("GET", f"/workspaces/{ws}/shares")["shares"]
    assert page.csp_errors == [] and bob_page.csp_errors == []


def test_operators_register_a_node_and_create_a_root(stack, browser, screenshot, admin_api):
    settings = stack.settings
    page = _open(browser, stack)
    _log_in(page, "admin", ADMIN_PASSWORD)
    _nav(page, "Nodes")
    page.get_by_text("Register a node").click()
    node = unique("node")

    def register(endpoint: str, secret: str) -> None:
        page.get_by_label("Node name").fill(node)
        page.get_by_label("Endpoint").fill(endpoint)
        page.get_by_label("Access key").fill(settings.bootstrap_node_access_key)
        page.get_by_label("Secret key").fill(secret)
        page.get_by_role("button", name="Register node").click()

    # Refusals, each a sentence (no error code): the SSRF guard, wio's own proxy, wrong credentials.
    register("http://169.254.169.254", "whatever")
    expect(page.get_by_role("alert")).to_have_text(
        "The node was not registered: endpoint resolves to 169.254.169.254, which is in a blocked network.")
    register(stack.s3_url, "whatever")
    expect(page.get_by_role("alert")).to_contain_text("is wio's own proxy, not a storage node")
    register(settings.bootstrap_node_endpoint, "not-the-secret")
    expect(page.get_by_role("alert")).to_contain_text("refused the credentials")
    expect(page.get_by_role("cell", name=node, exact=True)).to_have_count(0)

    register(settings.bootstrap_node_endpoint, settings.bootstrap_node_secret_key)
    expect(page.get_by_role("status")).to_have_text(f"Node {node} registered.")
    expect(page.get_by_role("cell", name=node, exact=True)).to_be_visible()
    expect(page.get_by_label("Secret key")).to_have_value("")
    screenshot(page, "nodes")

    _nav(page, "Roots")
    page.get_by_text("Create a root").click()
    root, bucket = unique("root"), unique("bucket")
    page.get_by_label("Root name").fill(root)
    page.get_by_label("Node", exact=True).select_option(node)
    page.get_by_label("Bucket").fill("Not_A_Bucket")
    page.get_by_label("Type").select_option("private")
    page.get_by_role("button", name="Create root").click()
    expect(page.get_by_role("alert")).to_have_text("The root was not created: 'bucket' is not a valid S3 bucket name.")
    page.get_by_label("Bucket").fill(bucket)
    page.get_by_label("Prefix").fill("wio/")
    page.get_by_role("button", name="Create root").click()
    expect(page.get_by_role("status")).to_have_text(f"Root {root} created on {node}.")
    row = page.get_by_role("row").filter(has=page.get_by_role("cell", name=root, exact=True))
    for cell in (node, bucket, "wio/", "private"):
        expect(row.get_by_role("cell", name=cell, exact=True)).to_be_visible()
    screenshot(page, "roots")
    # The root is real: its bucket exists on the node, and the API lists it on the new node.
    direct = s3_client(settings.bootstrap_node_endpoint, {"access_key_id": settings.bootstrap_node_access_key,
                                                          "secret_access_key": settings.bootstrap_node_secret_key})
    direct.head_bucket(Bucket=bucket)
    listed = [r for r in admin_api.call("GET", "/roots")["roots"] if r["name"] == root]
    assert [{k: v for k, v in r.items() if k != "created_at"} for r in listed] == [
        {"name": root, "node": node, "bucket": bucket, "prefix": "wio/", "type": "private"}]
    assert page.csp_errors == []


def test_an_expired_login_returns_to_the_login_page_with_the_reason(stack, browser):
    person = make_person(stack, "ivy")
    page = _open(browser, stack)
    _log_in(page, person.name, person.password)
    _nav(page, "Access keys")
    expect(page.get_by_role("heading", name="Access keys")).to_be_visible()
    # The page's login expires: the token it holds becomes one the server signed an hour ago for a minute
    # (the token lives in api.js's memory; the module is the page's own instance). The server refuses it.
    expired = issue_token(stack.settings.jwt_secret, person.name, 60, now=time.time() - 3600)
    page.evaluate("async (token) => { (await import('/console/api.js')).setToken(token); }", expired)
    _nav(page, "Groups")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    expect(page.get_by_role("alert")).to_have_text("Your session has expired; log in again.")
    expect(page.get_by_role("navigation", name="Main").get_by_role("link")).to_have_count(0)
    # Logging in again goes back to the page the user was on.
    page.get_by_label("Username").fill(person.name)
    page.get_by_label("Password").fill(person.password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Groups")).to_be_visible()
    expect(page.get_by_role("alert")).to_have_count(0)
    assert page.csp_errors == []


def test_operators_remove_a_root_and_a_node(stack, browser, screenshot, admin_api, s3_node):
    """Each removal asks first, saying what goes and what stays; a root holding workspaces is refused in
    words with their number; a node goes with its roots and workspaces; the data stays on the node."""
    node, kept, full, ws = unique("rmnode"), unique("rmroot"), unique("rmroot"), unique("rmws")
    bucket = unique("rm-bucket-")
    admin_api.call("POST", "/nodes", {"name": node, "endpoint": s3_node.endpoint, "region": s3_node.region,
                                      "access_key": s3_node.access_key, "secret_key": s3_node.secret_key})
    admin_api.call("POST", "/roots", {"name": kept, "node": node, "bucket": bucket, "type": "private"})
    admin_api.call("POST", "/roots", {"name": full, "node": node, "bucket": bucket, "prefix": "p/", "type": "private"})
    admin_api.call("POST", "/workspaces", {"name": ws, "root": full})
    try:
        # A user who does not own the node sees its roots, without a Remove button (the Roots page is
        # linked for administrators only; any user reaches it by its address).
        user = make_person(stack, "olga")
        user_page = _open(browser, stack)
        _log_in(user_page, user.name, user.password)
        user_page.evaluate("location.hash = '#/admin/roots'")
        expect(user_page.get_by_role("cell", name=kept, exact=True)).to_be_visible()
        expect(user_page.get_by_role("button", name=f"Remove root {kept}")).to_have_count(0)

        page = _open(browser, stack)
        asked: list[str] = []
        page.on("dialog", lambda dialog: asked.append(dialog.message))   # _open's handler accepts it
        _log_in(page, "admin", ADMIN_PASSWORD)
        _nav(page, "Roots")
        page.get_by_role("button", name=f"Remove root {full}").click()
        expect(page.get_by_role("alert")).to_have_text(
            f"The root was not removed: root '{full}' still holds 1 workspace; delete them first "
            "(the bucket and its data stay on the node either way).")
        assert asked == [f"Remove root {full}? wio forgets it; this is refused while it holds workspaces. "
                         f"The bucket {bucket} and its data stay on {node}."]
        expect(page.get_by_role("cell", name=full, exact=True)).to_be_visible()

        page.get_by_role("button", name=f"Remove root {kept}").click()
        expect(page.get_by_role("status")).to_have_text(f"Root {kept} removed; bucket {bucket} stays on {node}.")
        expect(page.get_by_role("cell", name=kept, exact=True)).to_have_count(0)
        assert kept not in {r["name"] for r in admin_api.call("GET", "/roots")["roots"]}

        _nav(page, "Nodes")
        page.get_by_role("button", name=f"Remove node {node}").click()
        expect(page.get_by_role("status")).to_have_text(f"Node {node} removed; its data stays on the node.")
        expect(page.get_by_role("cell", name=node, exact=True)).to_have_count(0)
        assert asked[-1] == (f"Remove node {node}? wio forgets it, with its roots and every workspace on them (their "
                             "shares go too, and wio stops serving them at once). The buckets and their data stay on "
                             "the node.")
        screenshot(page, "nodes-removed")
        assert node not in {n["name"] for n in admin_api.call("GET", "/nodes")["nodes"]}
        assert full not in {r["name"] for r in admin_api.call("GET", "/roots")["roots"]}
        assert ws not in {w["name"] for w in admin_api.call("GET", "/workspaces")["workspaces"]}
        direct = s3_client(s3_node.endpoint, {"access_key_id": s3_node.access_key,
                                              "secret_access_key": s3_node.secret_key})
        direct.head_bucket(Bucket=bucket)
        assert page.csp_errors == [] and user_page.csp_errors == []
    finally:
        if node in {n["name"] for n in admin_api.call("GET", "/nodes")["nodes"]}:
            admin_api.call("DELETE", f"/nodes/{node}")
