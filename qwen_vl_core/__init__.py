"""Framework-free core for Qwen-VL on DashScope: configuration, media, protocol, transport."""

__version__ = "0.1.0"

from .client import PreparedRequest, QwenVLClient  # noqa: E402
from .errors import (  # noqa: E402
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
from .models import ModelCapabilities, get_capabilities  # noqa: E402
from .tokens import image_tokens, video_tokens  # noqa: E402
from .types import ChatDelta, ChatResult, StreamAccumulator, ToolCall, ToolCallDelta, Usage  # noqa: E402

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
    "InputValidationError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ServerError",
]
