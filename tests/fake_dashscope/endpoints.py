"""The endpoints the fake server answers, and the record of one request to them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

COMPATIBLE_PATHS = ("/compatible-mode/v1/chat/completions", "/v1/chat/completions")
NATIVE_PATH = "/api/v1/services/aigc/multimodal-generation/generation"
EMBEDDING_PATHS = ("/compatible-mode/v1/embeddings", "/v1/embeddings")
UPLOAD_POLICY_PATH = "/api/v1/uploads"
OSS_PATH = "/oss"


def kind_of(path: str) -> str:
    """Which endpoint a path names: ``compatible``, ``native``, ``upload_policy``, ``oss``, ``embeddings`` or
    ``other``."""
    path = path.rstrip("/") or "/"
    if path in COMPATIBLE_PATHS:
        return "compatible"
    if path == NATIVE_PATH:
        return "native"
    if path == UPLOAD_POLICY_PATH:
        return "upload_policy"
    if path == OSS_PATH:
        return "oss"
    if path in EMBEDDING_PATHS:
        return "embeddings"
    return "other"


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    json: Any | None = None

    @property
    def kind(self) -> str:
        """``compatible``, ``native``, ``upload_policy``, ``oss`` or ``other``."""
        return kind_of(self.path)

    @property
    def wants_stream(self) -> bool:
        if self.kind == "native":
            return (
                self.headers.get("x-dashscope-sse", "").strip().lower() == "enable"
                or "text/event-stream" in self.headers.get("accept", "").lower()
            )
        return isinstance(self.json, dict) and self.json.get("stream") is True

    def __repr__(self) -> str:  # bodies can be megabytes of base64
        return f"RecordedRequest({self.method} {self.path}, {len(self.body)} bytes)"
