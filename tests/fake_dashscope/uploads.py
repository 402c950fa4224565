"""The temporary-upload flow: ``GET /api/v1/uploads?action=getPolicy&model=M`` hands out an upload directory,
``POST /oss`` stores a multipart form's file under a key in it, and chat requests may then name ``oss://<key>``.
"""

from __future__ import annotations

import datetime as _dt
import email.message
import threading
import uuid

from .endpoints import OSS_PATH, RecordedRequest
from .payloads import Json, Reply, Text, new_id, native_error_body
from .validation import auth_ok


def oss_key(url: str) -> str:
    return url[len("oss://") :]


class UploadArea:
    """The files stored through ``POST /oss`` (``files``, key -> bytes) and the upload directories handed out.
    It shares the server's lock."""

    def __init__(self, lock: threading.Lock) -> None:
        self.files: dict[str, bytes] = {}
        self._dirs: set[str] = set()
        self._lock = lock

    def clear(self) -> None:
        """Forget files and directories (call with the lock held)."""
        self.files.clear()
        self._dirs.clear()

    def holds(self, url: str) -> bool:
        """Whether the object an ``oss://`` URL names was uploaded."""
        with self._lock:
            return oss_key(url) in self.files

    def new_dir(self) -> str:
        upload_dir = f"dashscope-instant/{uuid.uuid4().hex}/{_dt.date.today().isoformat()}"
        with self._lock:
            self._dirs.add(upload_dir)
        return upload_dir

    def check(self, key: str) -> tuple[bool, bool]:
        """``(allowed, exists)``: whether ``key`` lies inside a handed-out directory, and whether it is taken."""
        with self._lock:
            allowed = any(key.startswith(d + "/") and len(key) > len(d) + 1 for d in self._dirs)
            exists = key in self.files
        return allowed, exists

    def store(self, key: str, data: bytes) -> None:
        with self._lock:
            self.files[key] = data


def policy_reply(area: UploadArea, rec: RecordedRequest, base_url: str) -> Reply:
    """``GET /api/v1/uploads?action=getPolicy&model=M``."""
    rid = new_id()
    if not auth_ok(rec):
        return Json(native_error_body("Invalid API-key provided.", "InvalidApiKey", request_id=rid), 401)
    if rec.query.get("action") != "getPolicy" or not rec.query.get("model"):
        return Json(native_error_body("action=getPolicy and model are required.", "InvalidParameter", request_id=rid), 400)
    upload_dir = area.new_dir()
    return Json(
        {
            "request_id": rid,
            "data": {
                "policy": "p",
                "signature": "s",
                "upload_dir": upload_dir,
                "upload_host": base_url + OSS_PATH,
                "expire_in_seconds": 300,
                "max_file_size_mb": 100,
                "capacity_limit_mb": 999999999,
                "oss_access_key_id": "ak",
                "x_oss_object_acl": "private",
                "x_oss_forbid_overwrite": "true",
            },
        }
    )


def oss_reply(area: UploadArea, rec: RecordedRequest) -> Reply:
    """``POST /oss``: OSS's form upload, with its XML errors."""
    rid = new_id()

    def fail(status: int, code: str, message: str) -> Text:
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{message}</Message><RequestId>{rid}</RequestId></Error>"
        )
        return Text(xml, status, content_type="application/xml", headers={"x-oss-request-id": rid})

    try:
        parts = parse_multipart(rec.body, rec.headers.get("content-type", ""))
    except ValueError as exc:
        return fail(400, "InvalidArgument", f"Malformed multipart/form-data: {exc}")
    fields = {name: data for name, _filename, data in parts}
    required = ("OSSAccessKeyId", "Signature", "policy", "key", "success_action_status", "file")
    missing = [name for name in required if name not in fields]
    if missing:
        return fail(400, "InvalidArgument", f"Missing form fields: {', '.join(missing)}")
    if parts[-1][0] != "file":
        return fail(400, "InvalidArgument", "The file field must be the last field of the form.")
    if (fields["OSSAccessKeyId"], fields["Signature"], fields["policy"]) != (b"ak", b"s", b"p"):
        return fail(403, "SignatureDoesNotMatch", "The request signature we calculated does not match.")
    key = fields["key"].decode("utf-8", "replace")
    allowed, exists = area.check(key)
    if not allowed:
        return fail(403, "AccessDenied", "Invalid according to Policy: Policy Condition failed: key starts-with upload_dir")
    if exists and fields.get("x-oss-forbid-overwrite", b"").lower() == b"true":
        return fail(409, "FileAlreadyExists", "The object you specified already exists and can not be overwritten.")
    area.store(key, fields["file"])
    status = fields["success_action_status"].decode().strip()
    return Text("", int(status) if status in ("200", "201") else 204, content_type="text/plain", headers={"x-oss-request-id": rid})


def parse_multipart(body: bytes, content_type: str) -> list[tuple[str, str | None, bytes]]:
    """Split a multipart/form-data body into ``(name, filename, data)`` in order (data byte-exact)."""
    msg = email.message.Message()
    msg["content-type"] = content_type
    if msg.get_content_type() != "multipart/form-data":
        raise ValueError("Content-Type is not multipart/form-data")
    boundary = msg.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise ValueError("no boundary")
    delim = b"\r\n--" + boundary.encode("latin-1")
    sections = (b"\r\n" + body).split(delim)
    out: list[tuple[str, str | None, bytes]] = []
    closed = False
    for section in sections[1:]:
        if section.startswith(b"--"):
            closed = True
            break
        _padding, sep, rest = section.partition(b"\r\n")
        if not sep:
            raise ValueError("bad part")
        head, sep, data = rest.partition(b"\r\n\r\n")
        if not sep:
            raise ValueError("part without header end")
        part = email.message.Message()
        for line in head.decode("latin-1").split("\r\n"):
            if ":" in line:
                name, value = line.split(":", 1)
                part[name.strip()] = value.strip()
        disposition = part.get("content-disposition")
        if not disposition:
            raise ValueError("part without Content-Disposition")
        name = part.get_param("name", header="content-disposition")
        filename = part.get_param("filename", header="content-disposition")
        if not isinstance(name, str):
            raise ValueError("part without a name")
        out.append((name, filename if isinstance(filename, str) else None, data))
    if not closed:
        raise ValueError("no closing boundary")
    return out
