"""Waiting on a pipeline a test started: its Serve apps deploy in the background."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import requests

T = TypeVar("T")


def wait_for(what: str, check: Callable[[], T], timeout: float = 90.0, every: float = 0.5) -> T:
    """`check()`'s first truthy answer; a request that fails (an app still deploying) counts as
    not yet. AssertionError naming `what` and the last answer after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except requests.RequestException as err:
            last = err
        if last and not isinstance(last, Exception):
            return last  # type: ignore[return-value]
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout:g} s (last: {last!r})")
