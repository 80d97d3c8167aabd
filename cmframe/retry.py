"""When and how long to retry a request: small pieces that compose, tenacity-style.

CM's gateway has no idempotency key, so the only safe retry is one of a request
the gateway *certainly* did not process:

* the connection could not be made (refused, DNS failure, connect timeout, no
  free connection in the pool): the request never left this machine;
* the gateway answered ``429 Too Many Requests`` or ``503 Service Unavailable``:
  it says it refused the request, and ``Retry-After`` says when to come back.

Anything else that goes wrong after the request may have been sent (read
timeout, connection dropped, ``500``/``502``/``504``, an unparsable answer) has
an *unknown* outcome: the messages may have been accepted, so :func:`classify`
never marks it for a retry.

The pieces::

    policy = RetryPolicy(
        stop=stop_after_attempt(6) | stop_after_delay(120),
        wait=wait_exponential(initial=0.5, maximum=30) + wait_random(0, 0.5),
        sleep=asyncio.sleep,          # inject a fake one in tests
    )

A *stop* is a callable ``RetryState -> bool`` (combine with ``|``), a *wait* a
callable ``RetryState -> float`` seconds (combine with ``+``). ``Retry-After``
is always honoured: the pause is never shorter than what the gateway asked for,
and a request the gateway asks to delay beyond ``max_retry_after`` is given up.
"""

from __future__ import annotations

import asyncio
import email.utils
import inspect
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

import httpx

__all__ = [
    "RetryState",
    "Stop",
    "Wait",
    "stop_after_attempt",
    "stop_after_delay",
    "stop_never",
    "wait_exponential",
    "wait_random",
    "wait_fixed",
    "parse_retry_after",
    "classify_exception",
    "classify_status",
    "RETRY_STATUSES",
    "UNKNOWN_STATUSES",
    "RetryPolicy",
]

#: Answers that certainly mean "not processed, come back later".
RETRY_STATUSES: frozenset[int] = frozenset({429, 503})
#: Answers after which the request may or may not have been processed.
UNKNOWN_STATUSES: frozenset[int] = frozenset({500, 502, 504})

#: Transport errors raised before any byte of the request reached the gateway.
_NOT_SENT_ERRORS: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)

Verdict = Literal["retry", "unknown", "answered"]


@dataclass(frozen=True)
class RetryState:
    """What is known when deciding on the next attempt.

    Attributes
    ----------
    attempt : int
        Attempts made so far (1 after the first failure).
    elapsed : float
        Seconds since the first attempt started.
    retry_after : float or None
        Seconds the gateway asked to wait (``Retry-After``), if it did.
    reason : str
        Why the last attempt failed, for messages.
    """

    attempt: int
    elapsed: float = 0.0
    retry_after: float | None = None
    reason: str = ""


class Stop:
    """A stop condition: ``stop(state) -> True`` means give up. Combine with ``|``."""

    def __init__(self, fn: Callable[[RetryState], bool], name: str) -> None:
        self._fn, self._name = fn, name

    def __call__(self, state: RetryState) -> bool:
        return bool(self._fn(state))

    def __or__(self, other: Stop) -> Stop:
        return Stop(lambda s: self(s) or other(s), f"{self._name} | {other._name}")

    def __repr__(self) -> str:
        return self._name


class Wait:
    """A pause length: ``wait(state) -> seconds``. Combine with ``+``."""

    def __init__(self, fn: Callable[[RetryState], float], name: str) -> None:
        self._fn, self._name = fn, name

    def __call__(self, state: RetryState) -> float:
        return max(0.0, float(self._fn(state)))

    def __add__(self, other: Wait) -> Wait:
        return Wait(lambda s: self(s) + other(s), f"{self._name} + {other._name}")

    def __repr__(self) -> str:
        return self._name


def stop_after_attempt(attempts: int) -> Stop:
    """Give up once ``attempts`` attempts have been made (1 = never retry)."""
    if attempts < 1:
        raise ValueError("attempts must be >= 1")
    return Stop(lambda s: s.attempt >= attempts, f"stop_after_attempt({attempts})")


def stop_after_delay(seconds: float) -> Stop:
    """Give up once ``seconds`` have passed since the first attempt."""
    return Stop(lambda s: s.elapsed >= seconds, f"stop_after_delay({seconds})")


def stop_never() -> Stop:
    """Never give up (pair it with a bounded ``Retry-After`` or use in tests only)."""
    return Stop(lambda s: False, "stop_never()")


def wait_fixed(seconds: float) -> Wait:
    """Always the same pause."""
    return Wait(lambda s: seconds, f"wait_fixed({seconds})")


def wait_exponential(initial: float = 0.5, maximum: float = 30.0, base: float = 2.0) -> Wait:
    """``initial * base**(attempt-1)``, capped at ``maximum``."""

    def fn(s: RetryState) -> float:
        # min() before the power would overflow on absurd attempt counts
        exponent = min(max(s.attempt - 1, 0), 64)
        return min(maximum, initial * base**exponent)

    return Wait(fn, f"wait_exponential({initial}, {maximum}, {base})")


def wait_random(low: float = 0.0, high: float = 0.5, *, rng: random.Random | None = None) -> Wait:
    """A uniform random pause in ``[low, high]``: the jitter that spreads retries."""
    rng = rng or random.Random()
    return Wait(lambda s: rng.uniform(low, high), f"wait_random({low}, {high})")


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date).

    Returns ``None`` when the header is missing or malformed.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def classify_exception(exc: BaseException) -> Verdict:
    """``"retry"`` when the request certainly never reached the gateway, else ``"unknown"``."""
    return "retry" if isinstance(exc, _NOT_SENT_ERRORS) else "unknown"


def classify_status(status: int, retry_statuses: frozenset[int] = RETRY_STATUSES) -> Verdict:
    """``"retry"`` for 429/503, ``"unknown"`` for other 5xx, ``"answered"`` otherwise."""
    if status in retry_statuses:
        return "retry"
    if status >= 500:
        return "unknown"
    return "answered"


async def _default_sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


@dataclass(frozen=True)
class RetryPolicy:
    """How the sender retries requests the gateway certainly did not process.

    Parameters
    ----------
    stop : Stop
        When to give up; the chunk is then recorded ``not_sent`` (safe to send
        on a later run).
    wait : Wait
        Pause before the next attempt (exponential backoff plus jitter by default).
    sleep : callable
        ``sleep(seconds)``, plain or ``async``; inject a recorder to make tests instant.
    max_retry_after : float
        The longest ``Retry-After`` honoured; a longer one gives up at once.
    retry_statuses : frozenset of int
        HTTP statuses that mean "not processed, retry" (429 and 503).

    Examples
    --------
    >>> RetryPolicy(stop=stop_after_attempt(3))  # doctest: +ELLIPSIS
    RetryPolicy(stop=stop_after_attempt(3), ...)
    """

    stop: Stop = field(default_factory=lambda: stop_after_attempt(6) | stop_after_delay(300))
    wait: Wait = field(
        default_factory=lambda: wait_exponential(0.5, 30.0) + wait_random(0.0, 0.5)
    )
    sleep: Callable[[float], Awaitable[None] | None] = _default_sleep
    max_retry_after: float = 300.0
    retry_statuses: frozenset[int] = RETRY_STATUSES

    @classmethod
    def never(cls) -> RetryPolicy:
        """A policy that never retries."""
        return cls(stop=stop_after_attempt(1))

    def next_delay(self, state: RetryState) -> float | None:
        """Seconds to pause before the next attempt, or ``None`` to give up."""
        if self.stop(state):
            return None
        delay = self.wait(state)
        if state.retry_after is not None:
            if state.retry_after > self.max_retry_after:
                return None
            delay = max(delay, state.retry_after)  # never earlier than asked
        return delay

    async def pause(self, seconds: float) -> None:
        """Sleep with the injected ``sleep`` (plain or coroutine function)."""
        result = self.sleep(seconds)
        if inspect.isawaitable(result):
            await result

    def pause_blocking(self, seconds: float) -> None:
        """Sleep from blocking code (maybe inside Jupyter's running loop).

        A plain injected ``sleep`` is called; a coroutine one (the default)
        cannot be awaited here, so the thread sleeps instead.
        """
        result = self.sleep(seconds)
        if inspect.isawaitable(result):
            if inspect.iscoroutine(result):
                result.close()
            time.sleep(seconds)
