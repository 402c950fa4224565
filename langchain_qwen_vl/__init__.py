"""LangChain integration for Qwen-VL vision-language models on DashScope (Alibaba Cloud Model Studio)."""

from qwen_vl_core.documents import DocumentReadError
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
from .document_loaders import QwenVLDocumentLoader
from .extractor import DEFAULT_EXTRACTION_PROMPT, ExtractionError, QwenVLExtractor
from .image_tool import ImageQuestion, QwenVLImageTool
from .page_rows import documents_from_rows
from .rate_limiters import QwenVLRateLimiter

__all__ = [
    "ChatQwenVL",
    "QwenVLDocumentLoader",
    "DocumentReadError",
    "QwenVLExtractor",
    "ExtractionError",
    "DEFAULT_EXTRACTION_PROMPT",
    "QwenVLImageTool",
    "ImageQuestion",
    "QwenVLRateLimiter",
    "documents_from_rows",
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
