"""Temporary-storage upload against a real HTTP server on 127.0.0.1 speaking getPolicy + OSS post form."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from qwen_vl_core.errors import (
    APIConnectionError,
    AuthenticationError,
    InputValidationError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
)
from qwen_vl_core.media import AsyncUploadSession, MediaOptions, PendingUpload, UploadSession, resolve_image
from qwen_vl_core.transport import RetryPolicy, Transport

FIELD_ORDER = [
    "OSSAccessKeyId",
    "Signature",
    "policy",
    "key",
    "x-oss-object-acl",
    "x-oss-forbid-overwrite",
    "success_action_status",
    "x-oss-content-type",
    "file",
]
UPLOAD_DIR = "dashscope-instant/0a1b2c/2026-05-09/f00d"
EXPIRED_XML = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Invalid according to Policy: Policy expired.</Message>"
    b"<RequestId>OSS-REQ-1</RequestId></Error>"
)
DENIED_XML = (
    b"<Error><Code>AccessDenied</Code><Message>You have no right to access this object.</Message>"
    b"<RequestId>OSS-REQ-2</RequestId></Error>"
)


def parse_multipart(content_type: str, body: bytes) -> list[dict]:
    """Parts in wire order: name, filename, content type, raw content."""
    boundary = re.search(r'boundary="?([^";]+)"?', content_type).group(1).encode()
    parts = []
    for chunk in body.split(b"--" + boundary)[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, content = chunk[2:].partition(b"\r\n\r\n")
        headers = dict(
            (k.strip().lower(), v.strip()) for k, _, v in (line.partition(":") for line in head.decode().split("\r\n"))
        )
        disposition = headers["content-disposition"]
        filename = re.search(r'filename="([^"]*)"', disposition)
        parts.append(
            {
                "name": re.search(r'name="([^"]*)"', disposition).group(1),
                "filename": filename.group(1) if filename else None,
                "content_type": headers.get("content-type"),
                "content": content[:-2],  # strip the CRLF before the next boundary
            }
        )
    return parts


class FakeDashScope:
    """getPolicy endpoint and OSS bucket in one threaded server."""

    def __init__(self) -> None:
        self.gets: list[dict] = []
        self.posts: list[dict] = []
        self.generation = 0
        self.valid: set[str] = set()
        self.policy_error: tuple[int, bytes] | None = None
        self.oss_error: tuple[int, bytes] | None = None
        self.always_expired = False
        self.get_faults: list[tuple[int, bytes]] = []  # answered first, one per request, in order
        self.post_faults: list[tuple[int, bytes]] = []
        self.expire_in_seconds = 300
        self.max_file_size_mb = 100
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _reply(self, status: int, body: bytes, ctype: str, extra: dict | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                url = urlsplit(self.path)
                fake.gets.append({"path": url.path, "query": parse_qs(url.query), "headers": dict(self.headers)})
                if fake.get_faults:
                    self._reply(*fake.get_faults.pop(0), "application/json")
                    return
                if fake.policy_error:
                    status, body = fake.policy_error
                    self._reply(status, body, "application/json", {"x-request-id": "hdr-req"})
                    return
                fake.generation += 1
                policy = f"policy-{fake.generation}"
                fake.valid.add(policy)
                data = {
                    "policy": policy,
                    "signature": f"sig-{fake.generation}",
                    "upload_dir": UPLOAD_DIR,
                    "upload_host": f"http://127.0.0.1:{fake.port}/oss",
                    "expire_in_seconds": fake.expire_in_seconds,
                    "max_file_size_mb": fake.max_file_size_mb,
                    "capacity_limit_mb": 999999,
                    "oss_access_key_id": "LTAI-test",
                    "x_oss_object_acl": "private",
                    "x_oss_forbid_overwrite": "true",
                }
                body = json.dumps({"request_id": f"req-{fake.generation}", "data": data}).encode()
                self._reply(200, body, "application/json")

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                parts = parse_multipart(self.headers["Content-Type"], body)
                fake.posts.append({"path": self.path, "headers": dict(self.headers), "parts": parts})
                fields = {p["name"]: p["content"].decode("latin-1") for p in parts if p["filename"] is None}
                if fake.post_faults:
                    self._reply(*fake.post_faults.pop(0), "application/xml")
                elif fake.always_expired or fields.get("policy") not in fake.valid:
                    self._reply(403, EXPIRED_XML, "application/xml")
                elif fake.oss_error:
                    self._reply(*fake.oss_error, "application/xml")
                else:
                    self._reply(200, b"", "text/plain")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.policy_url = f"http://127.0.0.1:{self.port}/api/v1/uploads"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def expire_all(self) -> None:
        self.valid.clear()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake():
    server = FakeDashScope()
    yield server
    server.close()


AUTH = {"Authorization": "Bearer sk-test-secret", "Content-Type": "application/json"}


def client() -> httpx.Client:
    # default headers on the client too: none of them may reach the OSS post
    return httpx.Client(
        headers={"Authorization": "Bearer sk-client-default", "Content-Type": "application/json"}, timeout=5
    )


def aclient() -> httpx.AsyncClient:
    return httpx.AsyncClient(
        headers={"Authorization": "Bearer sk-client-default", "Content-Type": "application/json"}, timeout=5
    )


PNG = PendingUpload(
    data=b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 50,
    filename="scan page.png",
    mime="image/png",
    source="/tmp/scan page.png",
)
MP4 = PendingUpload(
    data=b"\x00\x00\x00\x18ftypisom" + b"\r\n--x\r\n" * 500, filename="clip.mp4", mime="video/mp4", source="clip.mp4"
)
KEY = re.compile(rf"^{re.escape(UPLOAD_DIR)}/[0-9a-f]{{32}}_(\w+)\.(\w+)$")


def check_post(post: dict, pending: PendingUpload, generation: int) -> str:
    parts = post["parts"]
    assert [p["name"] for p in parts] == FIELD_ORDER
    fields = {p["name"]: p for p in parts}
    value = {name: p["content"].decode() for name, p in fields.items() if name != "file"}
    assert value["OSSAccessKeyId"] == "LTAI-test"
    assert value["Signature"] == f"sig-{generation}" and value["policy"] == f"policy-{generation}"
    assert value["x-oss-object-acl"] == "private" and value["x-oss-forbid-overwrite"] == "true"
    assert value["success_action_status"] == "200" and value["x-oss-content-type"] == pending.mime
    key = value["key"]
    assert KEY.match(key), key
    file = fields["file"]
    assert file["content"] == pending.data
    assert file["content_type"] == pending.mime and file["filename"] == key.rsplit("/", 1)[1]
    headers = {k.lower(): v for k, v in post["headers"].items()}
    assert "authorization" not in headers
    assert headers["content-type"].startswith("multipart/form-data; boundary=")
    assert post["path"] == "/oss"
    return key


def check_get(get: dict) -> None:
    assert get["path"] == "/api/v1/uploads"
    assert get["query"] == {"action": ["getPolicy"], "model": ["qwen3-vl-plus"]}
    assert {k.lower(): v for k, v in get["headers"].items()}["authorization"] == "Bearer sk-test-secret"


# ------------------------------------------------------------------ sync


def test_one_policy_for_two_files(fake):
    with client() as http:
        session = UploadSession(http, policy_url=fake.policy_url, headers=AUTH, model="qwen3-vl-plus")
        first = session.upload(PNG)
        second = session.upload(MP4)
    assert len(fake.gets) == 1 and len(fake.posts) == 2
    check_get(fake.gets[0])
    key1 = check_post(fake.posts[0], PNG, 1)
    key2 = check_post(fake.posts[1], MP4, 1)
    assert (first, second) == ("oss://" + key1, "oss://" + key2)
    assert KEY.match(key1).groups() == ("scan_page", "png") and KEY.match(key2).groups() == ("clip", "mp4")


def test_client_auth_never_reaches_the_bucket(fake):
    with httpx.Client(auth=httpx.BasicAuth("user", "client-secret"), timeout=5) as http:
        session = UploadSession(http, policy_url=fake.policy_url, headers={}, model="qwen3-vl-plus")
        session.upload(PNG)
    assert "authorization" in {k.lower() for k in fake.gets[0]["headers"]}  # the policy call may authenticate
    check_post(fake.posts[0], PNG, 1)  # asserts no Authorization header on the OSS post


def test_expired_policy_is_fetched_again_once(fake):
    with client() as http:
        session = UploadSession(http, policy_url=fake.policy_url, headers=AUTH, model="qwen3-vl-plus")
        session.upload(PNG)
        fake.expire_all()
        url = session.upload(MP4)
    assert len(fake.gets) == 2 and len(fake.posts) == 3
    check_post(fake.posts[2], MP4, 2)
    assert url == "oss://" + check_post(fake.posts[2], MP4, 2)


def test_policy_still_expired_after_refetch_raises(fake):
    fake.always_expired = True
    with client() as http:
        session = UploadSession(http, policy_url=fake.policy_url, headers=AUTH, model="qwen3-vl-plus")
        with pytest.raises(PermissionDeniedError) as info:
            session.upload(PNG)
    assert len(fake.posts) == 2 and len(fake.gets) == 2
    err = info.value
    assert err.status == 403 and err.code == "AccessDenied" and err.request_id == "OSS-REQ-1"
    assert "Policy expired" in err.message and "/tmp/scan page.png" in err.message


def test_other_oss_errors_are_not_retried(fake):
    fake.oss_error = (403, DENIED_XML)
    with client() as http:
        session = UploadSession(http, policy_url=fake.policy_url, headers=AUTH, model="qwen3-vl-plus")
        with pytest.raises(PermissionDeniedError, match="no right to access"):
            session.upload(PNG)
    assert len(fake.posts) == 1 and len(fake.gets) == 1


def test_get_policy_errors_are_typed(fake):
    fake.policy_error = (
        401,
        json.dumps({"code": "InvalidApiKey", "message": "Invalid API-key provided.", "request_id": "r-401"}).encode(),
    )
    with client() as http:
        session = UploadSession(http, policy_url=fake.policy_url, headers=AUTH, model="qwen3-vl-plus")
        with pytest.raises(AuthenticationError) as info:
            session.upload(PNG)
    assert info.value.status == 401 and info.value.request_id == "r-401"
    assert fake.posts == []


def test_file_larger_than_policy_allows_is_refused_before_posting(fake):
    fake.max_file_size_mb = 0.01  # 10.24 KB
    with client() as http:
        session = UploadSession(http, policy_url=fake.policy_url, headers=AUTH, model="qwen3-vl-plus")
        with pytest.raises(InputValidationError) as info:
            session.upload(PNG)
    assert (
        str(info.value)
        == "image '/tmp/scan page.png' is 12.5 KB; DashScope temporary storage accepts at most 0.01 MB per file"
    )
    assert fake.posts == []


def test_policy_near_expiry_is_refreshed_before_use(fake):
    fake.expire_in_seconds = 5  # inside the safety margin: never reused
    with client() as http:
        session = UploadSession(http, policy_url=fake.policy_url, headers=AUTH, model="qwen3-vl-plus")
        session.upload(PNG)
        session.upload(PNG)
    assert len(fake.gets) == 2 and len(fake.posts) == 2


def test_unreachable_host_is_a_connection_error():
    with httpx.Client(timeout=2) as http:
        session = UploadSession(http, policy_url="http://127.0.0.1:9/api/v1/uploads", headers=AUTH, model="m")
        with pytest.raises(APIConnectionError, match="getPolicy failed"):
            session.upload(PNG)


def test_resolved_pending_upload_end_to_end(fake, tmp_path):
    from PIL import Image

    path = tmp_path / "receipt.png"
    Image.effect_noise((96, 96), 50).save(path)  # patch multiple: sent as is
    media = resolve_image(path, options=MediaOptions(max_data_url_bytes=1000))
    assert media.url is None and media.pending is not None
    with client() as http:
        session = UploadSession(http, policy_url=fake.policy_url, headers=AUTH, model="qwen3-vl-plus")
        media.url = session.upload(media.pending)
    key = check_post(fake.posts[0], media.pending, 1)
    assert media.url == "oss://" + key and KEY.match(key).groups() == ("receipt", "png")
    assert fake.posts[0]["parts"][-1]["content"] == path.read_bytes()


# ------------------------------------------------------------------ retries (the client's transport)

FAST = RetryPolicy(max_retries=2, initial_delay=0.01, max_delay=0.02)
BUSY_JSON = (503, b'{"code": "ServiceUnavailable", "message": "busy"}')
BUSY_XML = (503, b"<Error><Code>ServiceUnavailable</Code><Message>Please retry.</Message></Error>")


def test_policy_and_post_are_retried_on_503_through_the_transport(fake):
    fake.get_faults = [BUSY_JSON]
    fake.post_faults = [BUSY_XML]
    with client() as http:
        session = UploadSession(
            Transport(retry=FAST, http_client=http), policy_url=fake.policy_url, headers=AUTH, model="qwen3-vl-plus"
        )
        url = session.upload(PNG)
    assert len(fake.gets) == 2 and len(fake.posts) == 2
    check_get(fake.gets[1])
    first, second = check_post(fake.posts[0], PNG, 1), check_post(fake.posts[1], PNG, 1)
    assert url == "oss://" + second
    assert first != second  # a fresh object per attempt: the policy forbids overwriting a stored one


def test_post_gives_up_after_the_transport_retries(fake):
    fake.post_faults = [BUSY_XML] * 3
    with client() as http:
        session = UploadSession(
            Transport(retry=FAST, http_client=http), policy_url=fake.policy_url, headers=AUTH, model="qwen3-vl-plus"
        )
        with pytest.raises(ServerError) as info:
            session.upload(PNG)
    assert len(fake.posts) == 3 and len(fake.gets) == 1
    assert info.value.status == 503 and info.value.code == "ServiceUnavailable"
    assert "/tmp/scan page.png" in info.value.message and "Please retry." in info.value.message


def test_get_policy_gives_up_after_the_transport_retries(fake):
    fake.get_faults = [(429, b'{"code": "Throttling.RateQuota", "message": "slow down"}')] * 3
    with client() as http:
        session = UploadSession(
            Transport(retry=FAST, http_client=http), policy_url=fake.policy_url, headers=AUTH, model="qwen3-vl-plus"
        )
        with pytest.raises(RateLimitError):
            session.upload(PNG)
    assert len(fake.gets) == 3 and fake.posts == []


async def test_async_post_is_retried_through_the_transport(fake):
    fake.post_faults = [(429, b"<Error><Code>Throttling</Code><Message>slow down</Message></Error>")]
    async with aclient() as http:
        transport = Transport(retry=FAST, async_http_client=http)
        session = AsyncUploadSession(transport, policy_url=fake.policy_url, headers=AUTH, model="qwen3-vl-plus")
        url = await session.upload(MP4)
    assert len(fake.posts) == 2 and url == "oss://" + check_post(fake.posts[1], MP4, 1)


# ------------------------------------------------------------------ async


async def test_async_one_policy_for_two_files_and_expiry_retry(fake):
    async with aclient() as http:
        session = AsyncUploadSession(http, policy_url=fake.policy_url, headers=AUTH, model="qwen3-vl-plus")
        first = await session.upload(PNG)
        second = await session.upload(MP4)
        assert len(fake.gets) == 1 and len(fake.posts) == 2
        fake.expire_all()
        third = await session.upload(PNG)
    check_get(fake.gets[0])
    assert first == "oss://" + check_post(fake.posts[0], PNG, 1)
    assert second == "oss://" + check_post(fake.posts[1], MP4, 1)
    assert len(fake.gets) == 2 and len(fake.posts) == 4
    assert third == "oss://" + check_post(fake.posts[3], PNG, 2)
    assert len({first, second, third}) == 3


async def test_async_errors(fake):
    fake.always_expired = True
    async with aclient() as http:
        session = AsyncUploadSession(http, policy_url=fake.policy_url, headers=AUTH, model="qwen3-vl-plus")
        with pytest.raises(PermissionDeniedError, match="Policy expired"):
            await session.upload(MP4)
    assert len(fake.posts) == 2
    fake.always_expired = False
    fake.max_file_size_mb = 0.001
    async with aclient() as http:
        session = AsyncUploadSession(http, policy_url=fake.policy_url, headers=AUTH, model="qwen3-vl-plus")
        with pytest.raises(InputValidationError, match=r"video 'clip.mp4' is .* at most 0.001 MB"):
            await session.upload(MP4)
    assert len(fake.posts) == 2
