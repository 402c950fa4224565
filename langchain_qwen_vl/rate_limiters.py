"""``QwenVLRateLimiter``: the core's rate limiter where LangChain takes a ``rate_limiter``.

.. code-block:: python

    from qwen_vl_core.rate_limit import RateLimiter
    from langchain_qwen_vl import ChatQwenVL, QwenVLRateLimiter

    limit = RateLimiter(requests_per_minute=1200)
    model = ChatQwenVL(rate_limiter=QwenVLRateLimiter(limit))

LangChain asks a rate limiter once per model call, before the request is built, and never tells it
how the call went: so through this adapter each call is charged ``tokens_per_call`` tokens (0 by
default: requests per minute only) and 429s are not reported. A ``QwenVLClient(rate_limit=limit)``
does both (each attempt charged its own estimated tokens, 429s pause or slow everyone); the same
limiter may serve both ways at once. Wraps a :class:`qwen_vl_core.rate_limit.RateLimiter` or a
cluster-wide ``shared_rate_limiter`` (``qwen_vl_core.documents.ray_data``).
"""

from __future__ import annotations

from typing import Any

from langchain_core.rate_limiters import BaseRateLimiter

__all__ = ["QwenVLRateLimiter"]


class QwenVLRateLimiter(BaseRateLimiter):
    """LangChain's :class:`~langchain_core.rate_limiters.BaseRateLimiter` over a core limiter."""

    def __init__(self, limiter: Any, *, tokens_per_call: int = 0) -> None:
        if not all(hasattr(limiter, name) for name in ("acquire", "aacquire", "try_acquire")):
            raise TypeError(
                "QwenVLRateLimiter wraps a qwen_vl_core.rate_limit.RateLimiter (or a shared one), "
                f"got {type(limiter).__name__}"
            )
        if tokens_per_call < 0:
            raise ValueError(f"tokens_per_call must be >= 0, got {tokens_per_call!r}")
        self.limiter = limiter
        self.tokens_per_call = int(tokens_per_call)

    def __repr__(self) -> str:
        return f"QwenVLRateLimiter({self.limiter!r}, tokens_per_call={self.tokens_per_call})"

    def acquire(self, *, blocking: bool = True) -> bool:
        if not blocking:
            return bool(self.limiter.try_acquire(self.tokens_per_call))
        self.limiter.acquire(self.tokens_per_call)
        return True

    async def aacquire(self, *, blocking: bool = True) -> bool:
        if not blocking:
            return bool(self.limiter.try_acquire(self.tokens_per_call))
        await self.limiter.aacquire(self.tokens_per_call)
        return True
