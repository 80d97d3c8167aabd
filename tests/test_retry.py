"""The retry pieces: what is retried, how long the pauses are, when to give up."""

from __future__ import annotations

import asyncio
import email.utils
import random

import httpx
import pytest

import cmframe
from cmframe.retry import (
    RetryPolicy,
    RetryState,
    classify_exception,
    classify_status,
    parse_retry_after,
    stop_after_attempt,
    stop_after_delay,
    stop_never,
    wait_exponential,
    wait_fixed,
    wait_random,
)


def test_lazy_export():
    assert cmframe.RetryPolicy is RetryPolicy


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectError("refused"),
        httpx.ConnectTimeout("slow connect"),
        httpx.PoolTimeout("no connection free"),
    ],
)
def test_errors_before_sending_are_retried(exc):
    assert classify_exception(exc) == "retry"


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ReadTimeout("no answer"),
        httpx.WriteTimeout("stuck writing"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ReadError("reset"),
        ValueError("anything else"),
    ],
)
def test_errors_after_sending_are_unknown(exc):
    assert classify_exception(exc) == "unknown"


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (429, "retry"),
        (503, "retry"),
        (500, "unknown"),
        (502, "unknown"),
        (504, "unknown"),
        (507, "unknown"),
        (200, "answered"),
        (400, "answered"),
        (405, "answered"),
    ],
)
def test_status_classes(status, verdict):
    assert classify_status(status) == verdict


def test_exponential_backoff_is_capped():
    wait = wait_exponential(initial=0.5, maximum=4.0)
    assert [wait(RetryState(n)) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert wait(RetryState(10_000)) == 4.0  # no overflow


def test_jitter_adds_a_bounded_random_part():
    wait = wait_fixed(1.0) + wait_random(0.0, 0.5, rng=random.Random(1))
    values = [wait(RetryState(1)) for _ in range(200)]
    assert all(1.0 <= v <= 1.5 for v in values)
    assert len(set(values)) > 100  # actually random, so retries spread out


def test_stops_compose():
    stop = stop_after_attempt(3) | stop_after_delay(10)
    assert not stop(RetryState(1, elapsed=0))
    assert stop(RetryState(3, elapsed=0))
    assert stop(RetryState(1, elapsed=11))
    assert not stop_never()(RetryState(10**6, elapsed=1e9))
    with pytest.raises(ValueError):
        stop_after_attempt(0)


def test_retry_after_seconds_and_date():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-4") == 0.0
    now = 1_800_000_000.0
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after(date, now=now) == pytest.approx(30, abs=1)
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None


def test_policy_honours_retry_after_and_gives_up():
    policy = RetryPolicy(stop=stop_after_attempt(4), wait=wait_fixed(0.1))
    assert policy.next_delay(RetryState(1)) == 0.1
    assert policy.next_delay(RetryState(1, retry_after=7.0)) == 7.0  # never earlier than asked
    assert policy.next_delay(RetryState(4)) is None
    long = RetryPolicy(stop=stop_never(), wait=wait_fixed(0), max_retry_after=60)
    assert long.next_delay(RetryState(1, retry_after=61)) is None  # gives up, not retries early
    assert RetryPolicy.never().next_delay(RetryState(1)) is None


def test_default_policy_is_bounded():
    policy = RetryPolicy()
    delays = [policy.next_delay(RetryState(n)) for n in range(1, 10)]
    assert 0.5 <= delays[0] <= 1.0 and 8.0 <= delays[4] <= 8.5  # exponential plus jitter
    assert delays[5] is None  # six attempts in all


def test_injected_sleep_plain_and_async():
    slept: list[float] = []
    asyncio.run(RetryPolicy(sleep=slept.append).pause(2.5))

    async def fake(seconds):
        slept.append(-seconds)

    asyncio.run(RetryPolicy(sleep=fake).pause(1.0))
    assert slept == [2.5, -1.0]


def test_reprs_name_the_pieces():
    policy = RetryPolicy(stop=stop_after_attempt(3), wait=wait_exponential(1, 8))
    assert "stop_after_attempt(3)" in repr(policy)
    assert "wait_exponential(1, 8, 2.0)" in repr(policy)


def test_pause_blocking_uses_a_plain_sleep_and_sleeps_itself_for_a_coroutine_one():
    import time as _time

    from cmframe.retry import RetryPolicy

    slept: list[float] = []
    RetryPolicy(sleep=slept.append).pause_blocking(0.25)
    assert slept == [0.25]

    awaited: list[float] = []

    async def async_sleep(seconds: float) -> None:  # cannot be awaited from blocking code
        awaited.append(seconds)

    started = _time.monotonic()
    RetryPolicy(sleep=async_sleep).pause_blocking(0.05)
    assert awaited == [] and _time.monotonic() - started >= 0.05
