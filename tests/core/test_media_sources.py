"""Every input form, and the local-file policy (qwen_vl_core.media.sources / policy)."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from urllib.parse import quote

import pytest
from PIL import Image

from qwen_vl_core.errors import InputValidationError
from qwen_vl_core.media import LocalFilePolicy, MediaOptions, is_remote_url, resolve_image, resolve_video

MP4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00" * 64


def png_bytes(size=(64, 48), color=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def decode(url: str) -> bytes:
    head, payload = url.split(",", 1)
    assert head.endswith(";base64")
    return base64.b64decode(payload)


@pytest.fixture
def png_file(tmp_path: Path) -> Path:
    path = tmp_path / "scan page.png"
    path.write_bytes(png_bytes())
    return path


# ------------------------------------------------------------------ pass-through URLs


@pytest.mark.parametrize(
    "url",
    [
        "https://dashscope.oss-cn-beijing.aliyuncs.com/images/tiger.png?x-oss-process=a&b=1",
        "http://example.com/cat.gif",  # never downloaded, so never format-checked
        "oss://dashscope-instant/abc/2026-01-01/x.png",
    ],
)
def test_remote_urls_pass_through_untouched(url):
    for resolve in (resolve_image, resolve_video):
        media = resolve(url)
        assert media.url == url
        assert media.pending is None and media.sent_bytes == 0 and not media.resized
        assert media.mime is None and media.width is None


def test_long_url_source_is_truncated_but_url_is_not():
    url = "https://example.com/" + "a" * 500 + ".png"
    media = resolve_image(url)
    assert media.url == url
    assert len(media.source) <= 100 and media.source.endswith("...")


def test_is_remote_url():
    assert is_remote_url("https://x/y.png")
    assert is_remote_url("HTTP://X/Y.PNG")
    assert is_remote_url("oss://bucket/key")
    assert not is_remote_url("data:image/png;base64,AAAA")
    assert not is_remote_url("file:///tmp/x.png")
    assert not is_remote_url("/tmp/https://x")
    assert not is_remote_url(b"https://x")
    assert not is_remote_url(Path("https://x"))


# ------------------------------------------------------------------ data URLs


def test_data_url_is_decoded_validated_and_reused():
    raw = png_bytes()
    url = "data:image/png;base64," + base64.b64encode(raw).decode()
    media = resolve_image(url)
    assert media.url == url
    assert media.source == "<data URL>"
    assert (media.width, media.height, media.mime) == (64, 48, "image/png")


def test_data_url_with_wrong_mime_and_line_breaks_is_reencoded_with_the_real_type():
    raw = png_bytes()
    b64 = base64.encodebytes(raw).decode()  # wrapped at 76 characters
    media = resolve_image("data:image/jpeg;base64," + b64)
    assert media.url.startswith("data:image/png;base64,")
    assert decode(media.url) == raw


def test_data_url_with_bad_base64_is_refused():
    with pytest.raises(InputValidationError, match=r"image '<data URL>'.*not valid base64"):
        resolve_image("data:image/png;base64,iVBOR*w0KGgo")


def test_data_url_without_comma_is_refused():
    with pytest.raises(InputValidationError, match="malformed data URL"):
        resolve_image("data:image/png;base64")


def test_video_data_url():
    url = "data:video/mp4;base64," + base64.b64encode(MP4).decode()
    media = resolve_video(url)
    assert media.url == url and media.mime == "video/mp4" and media.kind == "video"


# ------------------------------------------------------------------ local files


def test_path_as_str_and_pathlib(png_file: Path):
    for value in (str(png_file), png_file):
        media = resolve_image(value)
        assert media.source == str(png_file)
        assert decode(media.url) == png_file.read_bytes()
        assert (media.sent_width, media.sent_height) == (64, 48)


def test_relative_path(png_file: Path, monkeypatch):
    monkeypatch.chdir(png_file.parent)
    assert resolve_image(png_file.name).source == png_file.name


def test_file_uri_percent_escapes(png_file: Path):
    uri = "file://" + quote(str(png_file))
    assert "%20" in uri
    media = resolve_image(uri)
    assert media.source == str(png_file)
    assert decode(media.url) == png_file.read_bytes()
    assert resolve_image("file://localhost" + quote(str(png_file))).url == media.url


def test_missing_file_is_a_clear_error():
    with pytest.raises(InputValidationError) as info:
        resolve_image("foo.png")
    assert str(info.value).startswith("image 'foo.png': no such file")
    with pytest.raises(InputValidationError, match="video 'clip.mp4': no such file"):
        resolve_video("clip.mp4")


def test_directory_and_other_schemes_are_refused(tmp_path: Path):
    with pytest.raises(InputValidationError, match="is a directory"):
        resolve_image(tmp_path)
    with pytest.raises(InputValidationError, match="unsupported URL scheme 'ftp'"):
        resolve_image("ftp://example.com/x.png")


def test_raw_base64_string_gets_a_hint():
    raw = base64.b64encode(png_bytes((400, 400))).decode()
    with pytest.raises(InputValidationError, match="looks like raw base64"):
        resolve_image(raw)


def test_unreadable_file(png_file: Path, monkeypatch):
    import qwen_vl_core.media.local_files as local_files

    def deny(path, flags, *args):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(local_files.os, "open", deny)  # chmod 0 does not stop root
    with pytest.raises(InputValidationError, match=r"image '.*scan page\.png' is not readable \(permission denied\)"):
        resolve_image(png_file)


# ------------------------------------------------------------------ bytes and PIL images


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview])
def test_bytes_like(wrap):
    raw = png_bytes()
    media = resolve_image(wrap(raw))
    assert media.source == "<bytes>"
    assert decode(media.url) == raw


def test_pil_image_is_sent_lossless():
    img = Image.new("RGB", (40, 30), (1, 2, 3))
    img.putpixel((5, 5), (250, 251, 252))
    media = resolve_image(img)
    assert media.source == "<PIL image>" and media.mime == "image/png"
    sent = Image.open(io.BytesIO(decode(media.url)))
    assert sent.convert("RGB").tobytes() == img.tobytes()


def test_empty_and_unsupported_inputs():
    with pytest.raises(InputValidationError, match="'<bytes>' is empty"):
        resolve_image(b"")
    with pytest.raises(InputValidationError, match="unsupported input of type int"):
        resolve_image(42)
    with pytest.raises(InputValidationError, match="unsupported input of type Image"):
        resolve_video(Image.new("RGB", (20, 20)))


# ------------------------------------------------------------------ local-file policy


def test_local_files_disabled(png_file: Path):
    options = MediaOptions(policy=LocalFilePolicy(allow_local_files=False))
    for value in (str(png_file), png_file, "file://" + quote(str(png_file)), "does-not-exist.png"):
        with pytest.raises(InputValidationError) as info:
            resolve_image(value, options=options)
        assert "local files are disabled" in str(info.value)
    with pytest.raises(InputValidationError, match="local files are disabled"):
        resolve_video("/tmp/clip.mp4", options=options)
    # everything that is not a local file still works
    assert resolve_image(png_file.read_bytes(), options=options).url.startswith("data:image/png")
    assert resolve_image("https://x/y.png", options=options).url == "https://x/y.png"


def _layout(tmp_path: Path) -> tuple[Path, Path, Path]:
    allowed = tmp_path / "allowed"
    outside = tmp_path / "outside"
    allowed.mkdir()
    outside.mkdir()
    (allowed / "in.png").write_bytes(png_bytes())
    (outside / "secret.png").write_bytes(png_bytes())
    return allowed, outside, outside / "secret.png"


def test_allowed_dirs_accept_inside_and_refuse_outside(tmp_path: Path):
    allowed, outside, secret = _layout(tmp_path)
    options = MediaOptions(policy=LocalFilePolicy(allowed_dirs=(allowed,)))
    assert resolve_image(allowed / "in.png", options=options).sent_bytes > 0
    with pytest.raises(InputValidationError) as info:
        resolve_image(secret, options=options)
    message = str(info.value)
    assert str(secret) in message and str(allowed) in message and "outside the allowed directories" in message


def test_symlink_escaping_the_allowed_dir(tmp_path: Path):
    allowed, _, secret = _layout(tmp_path)
    link = allowed / "innocent.png"
    link.symlink_to(secret)
    options = MediaOptions(policy=LocalFilePolicy(allowed_dirs=(allowed,)))
    with pytest.raises(InputValidationError, match=r"innocent\.png' is outside the allowed") as info:
        resolve_image(link, options=options)
    assert "secret" not in str(info.value)  # the input as given, never the link's target
    dir_link = allowed / "sub"
    dir_link.symlink_to(secret.parent, target_is_directory=True)
    with pytest.raises(InputValidationError, match="outside the allowed"):
        resolve_image(f"file://{dir_link}/secret.png", options=options)


def test_dotdot_traversal(tmp_path: Path):
    allowed, _, _ = _layout(tmp_path)
    options = MediaOptions(policy=LocalFilePolicy(allowed_dirs=(str(allowed),)))
    sneaky = f"{allowed}/../outside/secret.png"
    with pytest.raises(InputValidationError, match="outside the allowed"):
        resolve_image(sneaky, options=options)
    with pytest.raises(InputValidationError, match="outside the allowed"):
        resolve_image("file://" + sneaky, options=options)


def test_policy_runs_before_the_file_is_touched(tmp_path: Path, monkeypatch):
    import qwen_vl_core.media.local_files as local_files

    allowed, outside, _ = _layout(tmp_path)
    options = MediaOptions(policy=LocalFilePolicy(allowed_dirs=(allowed,)))
    calls = []
    monkeypatch.setattr(local_files.os, "open", lambda path, *a: calls.append(path) or -1)
    with pytest.raises(InputValidationError, match="outside the allowed"):
        resolve_image(outside / "missing.png", options=options)  # not "no such file": existence not probed
    with pytest.raises(InputValidationError, match="outside the allowed"):
        resolve_image(outside / "secret.png", options=options)
    assert calls == []


def test_policy_check_returns_the_resolved_path_and_normalizes_dirs(tmp_path: Path):
    allowed, _, _ = _layout(tmp_path)
    policy = LocalFilePolicy(allowed_dirs=str(allowed))  # a single str is accepted too
    assert policy.allowed_dirs == (allowed,)
    assert policy.check(allowed / "x" / ".." / "in.png") == (allowed / "in.png").resolve()
    assert LocalFilePolicy().check(Path("rel.png")) == Path.cwd().resolve() / "rel.png"


def test_a_fifo_is_refused_without_blocking(tmp_path: Path):
    import os

    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)  # opening it for reading would wait for a writer
    for options in (MediaOptions(), MediaOptions(policy=LocalFilePolicy(allowed_dirs=(tmp_path,)))):
        with pytest.raises(InputValidationError, match=r"pipe\.png' is not a regular file"):
            resolve_image(fifo, options=options)


def test_max_file_bytes_lives_on_the_policy(tmp_path: Path):
    assert MediaOptions().max_file_bytes is None and MediaOptions().policy.max_file_bytes is None
    options = MediaOptions(policy=LocalFilePolicy(max_file_bytes=10))
    assert options.max_file_bytes == 10  # read back from the policy
    assert MediaOptions(policy=LocalFilePolicy(max_file_bytes=10), max_file_bytes=20).policy.max_file_bytes == 20
    with pytest.raises(ValueError, match="max_file_bytes must be a positive number"):
        LocalFilePolicy(max_file_bytes=0)
