"""Issue 22: one operation table (policy/operations.py) drives recognition, authorization and dispatch,
and is the single source of the S3 operations list in docs/conformance.md."""
from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from policy.operations import (BY_NAME, LISTING_OPERATIONS, OPERATION_PERMISSIONS, OPERATIONS, Scope, Strategy,
                               markdown)
from proxy.errors import S3Error
from proxy.handlers import HANDLERS
from proxy.operations import BUCKET_VIEWS, classify, is_sts

DOC = Path(__file__).resolve().parents[2] / "docs" / "conformance.md"
BEGIN, END = "<!-- operations:begin (python -m policy.operations --markdown) -->", "<!-- operations:end -->"


def test_names_are_unique_and_every_row_has_an_async_handler():
    assert len(BY_NAME) == len(OPERATIONS)
    for op in OPERATIONS:
        assert inspect.iscoroutinefunction(inspect.unwrap(HANDLERS[op.name])), op.name


def test_strategies_and_permissions_agree():
    for op in OPERATIONS:
        if op.strategy in (Strategy.OBJECT, Strategy.LISTING, Strategy.COPY_SOURCE, Strategy.POST_POLICY):
            assert op.permission in ("read", "write", "admin"), op.name
        else:   # decided per key, by the caller's key alone, or by STS
            assert op.permission is None, op.name
    assert LISTING_OPERATIONS == {"ListObjects", "ListObjectsV2", "ListObjectVersions", "ListMultipartUploads"}
    assert "STS" not in OPERATION_PERMISSIONS and OPERATION_PERMISSIONS["DeleteObjects"] is None


def _request_for(op):
    bucket = None if op.scope is Scope.SERVICE else "b"
    key = "k" if op.scope is Scope.OBJECT else None
    query = {} if op.query is None else {op.query: op.query_value or ""}
    if op.name == "UploadPartCopy" or op.name == "UploadPart":
        query["partNumber"] = "1"
    headers = {} if op.header is None else {op.header: op.header_prefix + "; x" if op.header_prefix else "/a/b"}
    return op.method, bucket, key, query, headers


@pytest.mark.parametrize("op", [op for op in OPERATIONS if op.scope is not Scope.ROOT], ids=lambda op: op.name)
def test_every_row_is_recognised_from_its_own_description(op):
    method, bucket, key, query, headers = _request_for(op)
    assert classify(method, bucket, key, query, headers) is op
    # an object request with a query takes the general path: the same row
    if op.scope is Scope.OBJECT and not query:
        assert classify(method, bucket, key, {"x": "1"}, headers) is op


def test_sts_is_recognised_on_the_root_path_only():
    form = {"content-type": "application/x-www-form-urlencoded; charset=utf-8"}
    assert is_sts("POST", "/", form)
    assert not is_sts("POST", "/b", form) and not is_sts("GET", "/", form) and not is_sts("POST", "/", {})


def test_views_come_before_the_configuration_refusal():
    assert {op.query for op in BUCKET_VIEWS} == {"acl", "policyStatus", "policy", "cors", "lifecycle", "tagging",
                                                 "website", "replication", "object-lock"}
    assert {"GetBucketAcl", "PutBucketAcl"} <= {op.name for op in BUCKET_VIEWS}   # one subresource, two views
    with pytest.raises(S3Error) as caught:
        classify("PUT", "b", None, {"cors": ""}, {})
    assert caught.value.code == "NotImplemented"


def test_the_conformance_doc_lists_exactly_the_table():
    text = DOC.read_text()
    assert BEGIN in text and END in text, "docs/conformance.md lost its generated operations list"
    listed = text.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n") + "\n"
    assert listed == markdown(), "regenerate it: python -m policy.operations --markdown"


def test_the_generator_runs_as_a_command():
    out = subprocess.run([sys.executable, "-m", "policy.operations", "--markdown"], capture_output=True, text=True,
                         check=True, cwd=DOC.parents[1])
    assert out.stdout == markdown()
    for op in OPERATIONS:
        assert f"| {op.name} |" in out.stdout


def test_browser_uploads_are_recognised_by_the_table_like_any_operation():
    form = {"content-type": "multipart/form-data; boundary=x"}
    assert classify("POST", "b", None, {}, form).strategy is Strategy.POST_POLICY
    assert classify("POST", "b", None, {}, {"content-type": "Multipart/Form-Data; boundary=x"}).name == "PostObject"
    # the table's order: DeleteObjects and the configuration refusal come first, whatever the body's type
    assert classify("POST", "b", None, {"delete": ""}, form).name == "DeleteObjects"
    with pytest.raises(S3Error) as caught:
        classify("POST", "b", None, {"policy": ""}, form)
    assert caught.value.code == "NotImplemented"
    with pytest.raises(S3Error) as caught:
        classify("POST", "b", None, {}, {"content-type": "text/plain"})
    assert caught.value.code == "MethodNotAllowed"
