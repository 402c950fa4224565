"""Framework-free core for Qwen-VL on DashScope: configuration, media, protocol, transport."""

from ._version import __version__
from .client import PreparedRequest, QwenVLClient
from .errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ContentModerationError,
    EmptyResponseError,
    IncompleteStreamError,
    InputValidationError,
    NotFoundError,
    PermissionDeniedError,
    QwenVLError,
    RateLimitError,
    ResponseTooLargeError,
    ServerError,
)
from .models import DEFAULT_MODEL, ModelCapabilities, get_capabilities
from .tokens import image_tokens, video_tokens
from .types import (
    ChatDelta,
    ChatResult,
    StreamAccumulator,
    ToolCall,
    ToolCallDelta,
    Usage,
)

__all__ = [
    "__version__",
    "QwenVLClient",
    "PreparedRequest",
    "ChatResult",
    "ChatDelta",
    "StreamAccumulator",
    "ToolCall",
    "ToolCallDelta",
    "Usage",
    "DEFAULT_MODEL",
    "ModelCapabilities",
    "get_capabilities",
    "image_tokens",
    "video_tokens",
    "QwenVLError",
    "APIError",
    "APIConnectionError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "ContentModerationError",
    "IncompleteStreamError",
    "EmptyResponseError",
    "ResponseTooLargeError",
    "InputValidationError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ServerError",
]
