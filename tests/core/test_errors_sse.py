import pickle

import pytest

from qwen_vl_core.errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ContentModerationError,
    NotFoundError,
    PermissionDeniedError,
    QwenVLError,
    RateLimitError,
    ServerError,
    error_from_payload,
    error_from_response,
)
from qwen_vl_core.sse import SSEDecoder


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (400, "invalid_parameter_error", BadRequestError),
        (400, "data_inspection_failed", ContentModerationError),
        (400, "DataInspectionFailed", ContentModerationError),
        (401, "invalid_api_key", AuthenticationError),
        (403, "Model.AccessDenied", PermissionDeniedError),
        (404, "model_not_found", NotFoundError),
        (429, "Throttling.RateQuota", RateLimitError),
        (429, "limit_requests", RateLimitError),
        (500, "InternalError", ServerError),
        (503, None, ServerError),
        (418, None, BadRequestError),
    ],
)
def test_status_and_code_map_to_classes(status, code, cls):
    body = {"error": {"message": "boom", "type": "x", "code": code}, "request_id": "rid-1"}
    err = error_from_payload(body, status=status)
    assert type(err) is cls
    assert (err.status, err.code, err.request_id, err.message) == (status, code or "x", "rid-1", "boom")


def test_native_error_body():
    err = error_from_response(400, b'{"code":"InvalidParameter","message":"Range of input length","request_id":"r9"}', {})
    assert isinstance(err, BadRequestError)
    assert (err.code, err.request_id) == ("InvalidParameter", "r9")
    assert "Range of input length" in str(err) and "r9" in str(err)


def test_sse_framed_error_body():
    raw = b'data: {"error": {"message": "slow down", "code": "Throttling"}}\n\n'
    err = error_from_response(429, raw, {"x-request-id": "hdr-id"})
    assert isinstance(err, RateLimitError)
    assert err.request_id == "hdr-id" and err.message == "slow down"


def test_html_error_body_is_summarized():
    raw = b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"
    err = error_from_response(502, raw, {})
    assert isinstance(err, ServerError)
    assert "502 Bad Gateway" in err.message and "<h1>" not in err.message


def test_oss_xml_error_body():
    raw = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
        b"<Message>Invalid according to Policy: Policy expired.</Message><RequestId>OSS-1</RequestId></Error>"
    )
    err = error_from_response(403, raw, {"x-oss-request-id": "hdr"})
    assert isinstance(err, PermissionDeniedError)
    assert (err.code, err.request_id, err.message) == ("AccessDenied", "OSS-1", "Invalid according to Policy: Policy expired.")
    err = error_from_response(503, b"<Error><Code>ServiceUnavailable</Code></Error>", {"x-oss-request-id": "hdr"})
    assert isinstance(err, ServerError) and (err.message, err.request_id) == ("ServiceUnavailable", "hdr")


def test_empty_error_body():
    err = error_from_response(500, b"", {})
    assert isinstance(err, ServerError) and "HTTP 500" in err.message


def test_errors_pickle_with_fields():
    err = RateLimitError("x", status=429, code="Throttling", request_id="r")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is RateLimitError and back.request_id == "r" and back.status == 429


def test_hierarchy():
    assert issubclass(ContentModerationError, BadRequestError)
    assert issubclass(APIError, QwenVLError)


def test_sse_decoder_frames():
    lines = [": comment", "event: result", "id: 1", "data: {\"a\": 1}", "", "data: line1", "data: line2", "",
             "data:[DONE]", ""]
    assert list(SSEDecoder().iter(iter(lines))) == ['{"a": 1}', "line1\nline2", "[DONE]"]


def test_sse_decoder_flushes_unterminated_event():
    assert list(SSEDecoder().iter(iter(["data: x"]))) == ["x"]
