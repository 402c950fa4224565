"""LangChain integration for Qwen-VL vision-language models on DashScope (Alibaba Cloud Model Studio)."""

from qwen_vl_core.errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ContentModerationError,
    IncompleteStreamError,
    InputValidationError,
    NotFoundError,
    PermissionDeniedError,
    QwenVLError,
    RateLimitError,
    ServerError,
)

from .chat_models import ChatQwenVL

__all__ = [
    "ChatQwenVL",
    "QwenVLError",
    "APIError",
    "APIConnectionError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "ContentModerationError",
    "IncompleteStreamError",
    "InputValidationError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ServerError",
]
