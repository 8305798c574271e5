"""Issue 22: a SigningError reaches the client with its details, in the XML error body, as S3 gives them.

Through the real proxy (raw HTTP, signed by wio's own signer so the clock and the headers can be
made wrong on purpose), and the renderer on its own.
"""
from __future__ import annotations

import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit
from xml.etree import ElementTree

from proxy.errors import S3Error, error_xml
from signing import SigningError, sign_request

EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def _send(stack, key: dict, path: str, *, now: datetime, secret: str | None = None,
          extra: dict[str, str] | None = None, signed: list[str] | None = None) -> tuple[int, dict[str, str]]:
    host = urlsplit(stack.s3_url).netloc
    headers = {"Host": host, **(extra or {})}
    headers.update(sign_request("GET", path, "", headers, payload_hash=EMPTY, access_key=key["access_key_id"],
                                secret_key=secret or key["secret_access_key"], region="us-east-1", now=now,
                                headers_to_sign=signed))
    request = urllib.request.Request(stack.s3_url + path, headers=headers, method="GET")
    try:
        with urllib.request.urlopen(request) as resp:
            return resp.status, {}
    except urllib.error.HTTPError as exc:
        root = ElementTree.fromstring(exc.read())
        return exc.code, {child.tag: child.text or "" for child in root}


def test_request_time_too_skewed_names_both_times_and_the_allowed_skew(stack, person, workspace):
    sent = datetime.now(timezone.utc) - timedelta(hours=1)
    status, error = _send(stack, person.key, f"/{workspace}/k", now=sent)
    assert status == 403 and error["Code"] == "RequestTimeTooSkewed"
    assert error["RequestTime"] == sent.strftime("%Y%m%dT%H%M%SZ")
    server = datetime.strptime(error["ServerTime"], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    assert abs((server - datetime.now(timezone.utc)).total_seconds()) < 120
    assert error["MaxAllowedSkewMilliseconds"] == "900000"
    assert list(error)[:2] == ["Code", "Message"] and "RequestId" in error and "Resource" in error


def test_signature_does_not_match_shows_what_wio_computed(stack, person, workspace):
    status, error = _send(stack, person.key, f"/{workspace}/k", now=datetime.now(timezone.utc), secret="wrong" * 8)
    assert status == 403 and error["Code"] == "SignatureDoesNotMatch"
    assert error["StringToSign"].startswith("AWS4-HMAC-SHA256\n")            # newlines kept, as S3 sends them
    assert error["CanonicalRequest"].startswith(f"GET\n/{workspace}/k\n")
    assert len(error["SignatureProvided"]) == 64
    assert "wrong" not in "".join(error.values())                             # no secret, of course


def test_an_unsigned_amz_header_is_named(stack, person, workspace):
    status, error = _send(stack, person.key, f"/{workspace}/k", now=datetime.now(timezone.utc),
                          extra={"x-amz-meta-note": "x"}, signed=["host", "x-amz-date", "x-amz-content-sha256"])
    assert status == 403 and error["Code"] == "AccessDenied"
    assert error["HeadersNotSigned"] == "x-amz-meta-note"


def test_from_signing_keeps_code_status_message_and_details():
    exc = SigningError("RequestTimeTooSkewed", "too far", details={"RequestTime": "a", "ServerTime": "b"})
    error = S3Error.from_signing(exc)
    assert (error.code, error.status, error.message, error.details) == ("RequestTimeTooSkewed", 403, "too far",
                                                                         {"RequestTime": "a", "ServerTime": "b"})


def test_details_render_as_elements_and_stay_well_formed():
    body = error_xml("SignatureDoesNotMatch", "m", "/b/k", "R1",
                     {"CanonicalRequest": "GET\n/b\x00/k <&>", "bad name": "dropped", "<Evil>": "dropped"})
    root = ElementTree.fromstring(body)
    assert [child.tag for child in root] == ["Code", "Message", "CanonicalRequest", "Resource", "RequestId"]
    assert root.findtext("CanonicalRequest") == "GET\n/b /k <&>"
    assert error_xml("C", "m", "/", "R") == error_xml("C", "m", "/", "R", {})
