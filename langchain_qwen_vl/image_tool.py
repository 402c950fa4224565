"""``QwenVLImageTool``: lets a text-only agent ask Qwen-VL a question about an image (path or URL).

Local paths are confined to ``allowed_dirs`` (default: the working directory when the tool is made),
checked by :class:`qwen_vl_core.media.LocalFilePolicy` after symlinks and ``..`` are resolved. Every
refusal (outside the folders, no such file, not an image, URLs disabled) and every server error is
returned to the agent as the tool's answer (a ``ToolMessage`` with ``status="error"``), so the run
goes on and the agent can react; nothing is sent for a refused image.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForToolRun, CallbackManagerForToolRun
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.tools import BaseTool, ToolException
from pydantic import BaseModel, Field, field_validator, model_validator
from qwen_vl_core import InputValidationError, QwenVLError
from qwen_vl_core.media import LocalFilePolicy, MediaOptions, is_remote_url, resolve_image
from typing_extensions import Self

from .chat_models import ChatQwenVL

__all__ = ["QwenVLImageTool", "ImageQuestion", "DEFAULT_IMAGE_TOOL_SYSTEM_PROMPT"]

DEFAULT_IMAGE_TOOL_SYSTEM_PROMPT = (
    "You answer questions about one image for an assistant that cannot see it. Answer the question "
    "directly and concisely, reading any text exactly as printed. If the image does not show what is "
    "asked, say so instead of guessing."
)


class ImageQuestion(BaseModel):
    """Arguments of :class:`QwenVLImageTool`."""

    image: str = Field(description="Path of a local image file, or an http(s) URL of an image.")
    question: str = Field(description="A specific, self-contained question about the image.")


class QwenVLImageTool(BaseTool):
    """A LangChain tool that answers a question about an image with Qwen-VL.

    Example:
        ```python
        from langchain_qwen_vl import ChatQwenVL, QwenVLImageTool

        look = QwenVLImageTool(allowed_dirs=["./photos"], model="qwen3-vl-flash")
        agent_llm = ChatQwenVL(model="qwen3.5-plus").bind_tools([look])
        look.invoke({"image": "photos/receipt.jpg", "question": "What is the total?"})
        ```

    Args:
        llm: the :class:`ChatQwenVL` that looks at the image; default ``ChatQwenVL(**chat_kwargs)``
            (any ChatQwenVL setting: ``model``, ``region``, ``base_url``, ``api_key``, ...).
        allowed_dirs: folders local images must be in (after resolving symlinks and ``..``);
            default: the current working directory when the tool is created. ``["/"]`` allows any.
        allow_local_files: accept local paths (and ``file://`` URIs) at all.
        allow_urls: accept ``http(s)://`` and ``oss://`` URLs (sent to DashScope, which fetches them).
        system_prompt: the instruction to the vision model.

    The answer is the tool's content; its artifact is ``{"model", "request_id", "usage"}``. A refused
    image or a failed request comes back as a readable message (``status="error"`` in the
    ``ToolMessage``) rather than an exception; set ``handle_tool_error=False`` to raise instead.
    """

    name: str = "look_at_image"
    description: str = ""
    args_schema: type[BaseModel] = ImageQuestion
    response_format: Literal["content", "content_and_artifact"] = "content_and_artifact"
    handle_tool_error: bool | str | Callable[[ToolException], str] | None = True

    llm: ChatQwenVL
    allowed_dirs: list[str] | None = None
    allow_local_files: bool = True
    allow_urls: bool = True
    system_prompt: str | None = DEFAULT_IMAGE_TOOL_SYSTEM_PROMPT

    def __init__(self, *, llm: ChatQwenVL | None = None, **kwargs: Any) -> None:
        own = {k: v for k, v in kwargs.items() if k in type(self).model_fields}
        chat_kwargs = {k: v for k, v in kwargs.items() if k not in own}
        if llm is None:
            llm = ChatQwenVL(**chat_kwargs)
        elif chat_kwargs:
            raise TypeError(
                f"pass either llm or ChatQwenVL settings, not both (got llm and {', '.join(sorted(chat_kwargs))})"
            )
        super().__init__(llm=llm, **own)

    @field_validator("allowed_dirs", mode="before")
    @classmethod
    def _dirs(cls, value: Any) -> Any:
        if value is None:
            return [os.getcwd()]
        if isinstance(value, (str, os.PathLike)):
            value = [value]
        return [str(Path(os.fspath(d)).expanduser().resolve()) for d in value]

    @model_validator(mode="after")
    def _describe(self) -> Self:
        if not self.description:
            self.description = self._default_description()
        return self

    def _default_description(self) -> str:
        sources = []
        if self.allow_local_files:
            folders = ", ".join(self.allowed_dirs or []) or "(none)"
            sources.append(f"a local file path (inside: {folders})")
        if self.allow_urls:
            sources.append("an http(s) URL")
        given = " or ".join(sources) or "nothing (this tool is disabled)"
        return (
            "Look at an image and answer a question about it: what it shows, text in it (receipts, "
            "documents, screenshots), charts, objects, people, colours. Use it whenever you need to know "
            f"what an image contains. `image`: {given}. `question`: a specific, self-contained question."
        )

    @property
    def _policy(self) -> LocalFilePolicy:
        return LocalFilePolicy(allow_local_files=self.allow_local_files, allowed_dirs=tuple(self.allowed_dirs or ()))

    # ------------------------------------------------------------------ checks (nothing sent)

    def _folders(self) -> str:
        return ", ".join(self.allowed_dirs or []) or "(none)"

    def _image_for_request(self, image: str) -> Any:
        """What to put in the request for ``image``; raises ToolException with a message for the agent."""
        text = (image or "").strip()
        if not text:
            raise ToolException("No image given: pass the path of an image file or an http(s) URL.")
        if is_remote_url(text):
            if not self.allow_urls:
                alt = f" Give the path of an image file inside {self._folders()}." if self.allow_local_files else ""
                raise ToolException(f"Cannot open {image!r}: image URLs are not allowed for this tool.{alt}")
            return text
        if not self.allow_local_files and not text[:5].lower() == "data:":
            alt = " Give an http(s) URL of the image instead." if self.allow_urls else ""
            raise ToolException(f"Cannot open {image!r}: local files are not allowed for this tool.{alt}")
        llm = self.llm
        try:
            media = resolve_image(
                text,
                model=llm.model,
                high_resolution=bool(llm.high_resolution),
                min_pixels=llm.min_pixels,
                max_pixels=llm.max_pixels,
                options=MediaOptions(resize=llm.resize, upload=llm.upload, policy=self._policy),
            )
        except InputValidationError as exc:
            raise ToolException(
                f"Cannot look at that image: {exc.message}. Check the path, or ask the user for an image "
                f"inside the allowed folders ({self._folders()})."
            ) from exc
        if media.url is not None:
            return media.url  # a data URL: the file was read, checked and downscaled once, here
        assert media.pending is not None  # too large for a data URL: ChatQwenVL uploads it
        return media.pending.data

    def _messages(self, image: Any, question: str) -> list[BaseMessage]:
        if not (question or "").strip():
            raise ToolException("No question given: say what you want to know about the image.")
        messages: list[BaseMessage] = [SystemMessage(self.system_prompt)] if self.system_prompt else []
        messages.append(HumanMessage(content=[{"type": "image", "image": image}, {"type": "text", "text": question}]))
        return messages

    @staticmethod
    def _result(message: AIMessage) -> tuple[str, dict[str, Any]]:
        meta = message.response_metadata
        artifact = {
            "model": meta.get("model_name"),
            "request_id": meta.get("request_id"),
            "usage": message.usage_metadata,
        }
        return message.text, artifact

    @staticmethod
    def _failed(image: str, exc: QwenVLError) -> ToolException:
        return ToolException(f"Could not get an answer about {image!r}: {exc}")

    # ------------------------------------------------------------------ BaseTool

    def _run(
        self, image: str, question: str, run_manager: CallbackManagerForToolRun | None = None
    ) -> tuple[str, dict[str, Any]]:
        messages = self._messages(self._image_for_request(image), question)
        callbacks = run_manager.get_child() if run_manager else None
        try:
            message = self.llm.invoke(messages, {"callbacks": callbacks})
        except QwenVLError as exc:
            raise self._failed(image, exc) from exc
        return self._result(message)

    async def _arun(
        self, image: str, question: str, run_manager: AsyncCallbackManagerForToolRun | None = None
    ) -> tuple[str, dict[str, Any]]:
        messages = self._messages(self._image_for_request(image), question)
        callbacks = run_manager.get_child() if run_manager else None
        try:
            message = await self.llm.ainvoke(messages, {"callbacks": callbacks})
        except QwenVLError as exc:
            raise self._failed(image, exc) from exc
        return self._result(message)
