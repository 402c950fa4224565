"""One rate limit for a whole Ray cluster: a :class:`~qwen_vl_core.rate_limit.RateLimiter` held by
one named actor, and the small proxy every worker's client asks before each attempt.

The proxy pickles as the actor's handle (nothing else is in it), so it can be handed to actors and
tasks, or looked up by name from another job in the same namespace. Waiting happens in the actor
(an async actor: thousands of waiting requests cost it nothing), so every decision is taken with
the whole cluster's bookings in view, in the order requests asked.
"""

from __future__ import annotations

from typing import Any

from ...rate_limit import RateLimiter

__all__ = ["SharedRateLimiter", "shared_rate_limiter", "DEFAULT_NAME", "NAMESPACE"]

DEFAULT_NAME = "qwen-vl-rate-limit"
NAMESPACE = "qwen_vl"


class _LimiterActor:
    """The actor's body (made a Ray actor class by :func:`shared_rate_limiter`)."""

    def __init__(self, config: dict[str, Any]) -> None:
        self._limiter = RateLimiter(**config)

    def config(self) -> dict[str, Any]:
        return self._limiter.config()

    async def acquire(self, tokens: int) -> None:
        await self._limiter.aacquire(tokens)

    def try_acquire(self, tokens: int) -> bool:
        return self._limiter.try_acquire(tokens)

    def throttled(self, retry_after: float | None) -> None:
        self._limiter.throttled(retry_after)

    def stats(self) -> dict[str, float]:
        return self._limiter.stats()


class SharedRateLimiter:
    """The :class:`~qwen_vl_core.rate_limit.RateLimit` interface over the named actor: pass it as
    ``QwenVLClient(rate_limit=...)`` in any process of the cluster."""

    def __init__(self, handle: Any, name: str, expected_output_tokens: int) -> None:
        self._handle = handle
        self.name = name
        self.expected_output_tokens = expected_output_tokens

    def __repr__(self) -> str:
        return f"SharedRateLimiter(name={self.name!r})"

    def acquire(self, tokens: int = 0) -> None:
        import ray

        ray.get(self._handle.acquire.remote(int(tokens)))

    async def aacquire(self, tokens: int = 0) -> None:
        await self._handle.acquire.remote(int(tokens))

    def try_acquire(self, tokens: int = 0) -> bool:
        import ray

        return bool(ray.get(self._handle.try_acquire.remote(int(tokens))))

    def throttled(self, retry_after: float | None = None) -> None:
        """Tell the actor about a 429 (not waited for: the caller's own retry asks again anyway)."""
        self._handle.throttled.remote(retry_after)

    def stats(self) -> dict[str, float]:
        import ray

        return ray.get(self._handle.stats.remote())

    def config(self) -> dict[str, Any]:
        import ray

        return ray.get(self._handle.config.remote())

    def close(self) -> None:
        """End the actor (a later :func:`shared_rate_limiter` with this name starts a fresh one)."""
        import ray

        ray.kill(self._handle)


def shared_rate_limiter(
    requests_per_minute: float | None = None,
    tokens_per_minute: float | None = None,
    *,
    name: str = DEFAULT_NAME,
    namespace: str = NAMESPACE,
    **options: Any,
) -> SharedRateLimiter:
    """The cluster's limiter called ``name``: started (one actor, no CPU reserved) if it is not
    running yet, else the running one, which must have the same settings. ``options`` are
    :class:`~qwen_vl_core.rate_limit.RateLimiter`'s (``burst_requests``, ``expected_output_tokens``, ...).
    Needs a running Ray (``ray.init(...)``; a local one starts when none is).
    """
    import ray

    wanted = RateLimiter(requests_per_minute, tokens_per_minute, **options).config()  # checks the settings here
    actor_class = ray.remote(_LimiterActor)
    handle = actor_class.options(
        name=name,
        namespace=namespace,
        get_if_exists=True,
        num_cpus=0,
        max_concurrency=10_000,
        max_restarts=-1,
        max_task_retries=-1,
    ).remote(wanted)
    running = ray.get(handle.config.remote())
    if running != wanted:
        raise ValueError(
            f"a rate limiter named {name!r} is already running with other settings ({running}); use "
            f"another name, or end it first with shared_rate_limiter(...).close() / ray.kill"
        )
    return SharedRateLimiter(handle, name, int(wanted["expected_output_tokens"]))
