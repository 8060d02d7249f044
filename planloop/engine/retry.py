"""Retry policies for steps: attempts, exponential backoff with jitter, which errors retry."""

from __future__ import annotations

import random

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["RetryPolicy"]


class RetryPolicy(BaseModel):
    """How a failing step is tried again. Opt-in: steps have no retries by default.

    Args:
        attempts: total tries, the first included.
        initial_interval: seconds before the second try.
        backoff: each wait is this many times the previous one.
        max_interval: no wait is longer than this.
        jitter: each wait is scaled by a random factor in ``[1 - jitter, 1 + jitter]``.
        retry_on: exception types that are retried; others fail at once.

    Example:
        >>> policy = RetryPolicy(attempts=4, initial_interval=0.1, backoff=2, jitter=0)
        >>> [policy.wait(n) for n in (1, 2, 3)]
        [0.1, 0.2, 0.4]
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    attempts: int = Field(default=3, ge=1)
    initial_interval: float = Field(default=0.5, ge=0)
    backoff: float = Field(default=2.0, ge=1)
    max_interval: float = Field(default=30.0, ge=0)
    jitter: float = Field(default=0.1, ge=0, le=1)
    retry_on: tuple[type[BaseException], ...] = (Exception,)

    def wait(self, attempt: int) -> float:
        """Seconds to wait after failed try number ``attempt`` (1-based)."""
        base = min(self.initial_interval * self.backoff ** (attempt - 1), self.max_interval)
        if self.jitter:
            base *= random.uniform(1 - self.jitter, 1 + self.jitter)
        return base

    def retries(self, error: BaseException, attempt: int) -> bool:
        """Whether try number ``attempt`` that raised ``error`` is followed by another."""
        return attempt < self.attempts and isinstance(error, self.retry_on)
