"""Secrets, over real sockets: a prepared request's repr hides the key; pickles of a used client carry
no key (and no pools) and an unpickled client finds its key again the documented way, or says where it
looked; a server that echoes the key does not put it into the exception."""

from __future__ import annotations

import copy
import pickle
import traceback

import pytest

from qwen_vl_core import AuthenticationError, BadRequestError, ConfigurationError, QwenVLClient, QwenVLError
from qwen_vl_core.config import KeyToFind, SecretHeaders
from qwen_vl_core.errors import scrub_secrets
from tests.fake_dashscope import Json, Sse, chunks, completion, error_body, native_error_body

USER = [{"role": "user", "content": "hello"}]
ENV_KEY = "sk-from-the-environment-0042"


@pytest.fixture
def client(dashscope, api_key):
    c = QwenVLClient(api_key=api_key, base_url=dashscope.url, max_retries=0, timeout=5)
    yield c
    c.close()


def used(client: QwenVLClient) -> QwenVLClient:
    """The client after a sync and an async call: both connection pools exist."""
    import asyncio

    client.chat(USER, model="qwen3-vl-plus")
    asyncio.run(client.achat(USER, model="qwen3-vl-plus"))
    return client


# ------------------------------------------------------------------ repr


def test_prepared_request_repr_hides_the_key(client, api_key):
    req = client.prepare(USER, model="qwen3-vl-plus", stream=True)
    for text in (repr(req), str(req), repr(req.headers), str(req.headers), f"{req.headers}"):
        assert api_key not in text
    assert "'Authorization': 'Bearer ***'" in repr(req)
    assert req.headers["Authorization"] == f"Bearer {api_key}"  # what is sent is the real key
    assert isinstance(req.headers, dict)


def test_secret_headers_hide_every_credential_header():
    headers = SecretHeaders({"authorization": "Bearer abc", "X-Api-Key": "k", "Accept": "text/event-stream"})
    assert repr(headers) == "{'authorization': 'Bearer ***', 'X-Api-Key': '***', 'Accept': 'text/event-stream'}"
    assert b"abc" not in pickle.dumps(headers)


# ------------------------------------------------------------------ pickling


def test_a_used_client_pickles_without_its_key(client, api_key):
    data = pickle.dumps(used(client))
    assert api_key.encode() not in data
    assert api_key[3:].encode() not in data


def test_an_unpickled_client_finds_its_key_in_the_environment(client, dashscope, monkeypatch):
    data = pickle.dumps(used(client))
    monkeypatch.setenv("DASHSCOPE_API_KEY", ENV_KEY)
    clone = pickle.loads(data)
    assert clone.chat(USER, model="qwen3-vl-plus").text
    assert dashscope.chat_requests[-1].headers["authorization"] == f"Bearer {ENV_KEY}"
    assert api_key_free(repr(clone.api_key)) and str(clone.api_key) == "**********"


def api_key_free(text: str) -> bool:
    return ENV_KEY not in text


async def test_an_unpickled_client_works_async_and_streams(client, dashscope, monkeypatch):
    client.chat(USER, model="qwen3-vl-plus")
    await client.achat(USER, model="qwen3-vl-plus")  # both pools exist, the async one on this loop
    data = pickle.dumps(client)
    monkeypatch.setenv("DASHSCOPE_API_KEY", ENV_KEY)
    clone = pickle.loads(data)
    assert (await clone.achat(USER, model="qwen3-vl-plus")).text
    dashscope.script(Sse(chunks("streamed")))
    assert "".join([d.text async for d in clone.astream(USER, model="qwen3-vl-plus")]) == "streamed"
    assert {r.headers["authorization"] for r in dashscope.chat_requests[-2:]} == {f"Bearer {ENV_KEY}"}
    await clone.aclose()


def test_an_unpickled_client_finds_its_key_in_dotenv_or_credentials(client, dashscope, tmp_path, monkeypatch):
    data = pickle.dumps(client)
    (tmp_path / "cwd" / ".env").write_text("DASHSCOPE_API_KEY=sk-from-dotenv-0001\n")
    pickle.loads(data).chat(USER, model="qwen3-vl-plus")
    assert dashscope.chat_requests[-1].headers["authorization"] == "Bearer sk-from-dotenv-0001"
    (tmp_path / "cwd" / ".env").unlink()
    creds = tmp_path / "home" / ".alibabacloud"
    creds.mkdir()
    (creds / "credentials").write_text("[default]\ndashscope_api_key = sk-from-credentials-2\n")
    pickle.loads(data).chat(USER, model="qwen3-vl-plus")
    assert dashscope.chat_requests[-1].headers["authorization"] == "Bearer sk-from-credentials-2"


def test_an_unpickled_client_without_a_key_says_where_it_looked(client, dashscope):
    clone = pickle.loads(pickle.dumps(client))  # unpickling itself never fails
    with pytest.raises(ConfigurationError) as info:
        clone.chat(USER, model="qwen3-vl-plus")
    message = str(info.value)
    for place in ("DASHSCOPE_API_KEY", ".env", "credentials", "never pickled"):
        assert place in message
    assert dashscope.chat_requests == []


def test_copies_in_the_same_process_keep_the_key(client, dashscope, api_key):
    used(client)
    for clone in (copy.copy(client), copy.deepcopy(client)):
        clone.chat(USER, model="qwen3-vl-plus")
        assert dashscope.chat_requests[-1].headers["authorization"] == f"Bearer {api_key}"
    assert copy.deepcopy(client)._transport is not client._transport


def test_key_to_find_never_pickles_what_it_found(monkeypatch):
    monkeypatch.setenv("DASHSCOPE_API_KEY", ENV_KEY)
    key = KeyToFind()
    assert key.get_secret_value() == ENV_KEY
    assert ENV_KEY.encode() not in pickle.dumps(key) and ENV_KEY not in repr(key)


# ------------------------------------------------------------------ errors that echo the key


def assert_scrubbed(err: QwenVLError, key: str) -> None:
    rendered = [str(err), repr(err), err.message, repr(err.body), repr(err.args), pickle.dumps(err).decode("latin-1")]
    rendered.append("".join(traceback.format_exception(err)))
    for text in rendered:
        assert key not in text
    assert "***" in err.message


def test_an_echoed_key_is_scrubbed_from_the_error(client, dashscope, api_key):
    dashscope.script(Json(error_body(f"Incorrect API key provided: {api_key}.", "invalid_api_key"), status=401))
    with pytest.raises(AuthenticationError) as info:
        client.chat(USER, model="qwen3-vl-plus")
    assert_scrubbed(info.value, api_key)
    assert info.value.message == "Incorrect API key provided: ***."


def test_an_echoed_key_is_scrubbed_from_stream_and_native_errors(client, dashscope, api_key, tmp_path):
    from PIL import Image

    frame = {"error": {"message": f"bad header Authorization: Bearer {api_key}", "code": "invalid_parameter_error"}}
    dashscope.script(
        Sse([chunks("partial")[0], frame], done=False),
        Json(native_error_body(f"key {api_key} rejected", "InvalidParameter"), status=400),
    )
    with pytest.raises(QwenVLError) as info:
        list(client.stream(USER, model="qwen3-vl-plus"))
    assert_scrubbed(info.value, api_key)
    png = tmp_path / "scan.png"
    Image.new("RGB", (64, 48), "white").save(png)
    with pytest.raises(BadRequestError) as info:
        client.ocr(png)
    assert_scrubbed(info.value, api_key)


def test_an_unregistered_bearer_token_is_scrubbed_too():
    err = BadRequestError(
        "header was 'Authorization: Bearer tok_ABCDEFGH12345678'", body={"h": ["bearer tok_ABCDEFGH1234"]}
    )
    assert "tok_ABCDEFGH" not in str(err) and "tok_ABCDEFGH" not in repr(err.body)
    assert scrub_secrets(("a", {"k": "Bearer abcdefghij"})) == ("a", {"k": "Bearer ***"})
