"""Rate limits per account: a fixed one-minute window, counted in-process or in Redis.

The middleware sits outside the whole application, so that every response carries
`X-Rate-Limit` and `X-Rate-Limit-Remaining`, 404s and errors included. A request that
carries an `Authorization` header counts against its account (the one its Host names),
whether or not its credentials turn out valid, so that guessing credentials is throttled too.
A request without credentials is not counted: it shows the account's count, and is answered
401 (or is the OpenAPI document) without touching the database.

Past the limit the answer is 429 with `Retry-After`: the seconds to the window's end. With
`OPENPROFILES_REDIS_URL` set, all workers and hosts share one count per account and minute
(INCR and EXPIRE in one MULTI); without it, each process counts alone. When Redis cannot be
reached, the process counts alone for a few seconds and then tries Redis again: a Redis
outage degrades the limit, it does not take the API down.

When rate limiting is off (the default) this module is not installed at all.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .context import Runtime
from .errors import error_response
from .headers import header

log = logging.getLogger("openprofiles")

WINDOW_SECONDS = 60


@dataclass(frozen=True, slots=True)
class Window:
    index: int  # minutes since the epoch: the same on every host with a synchronised clock
    retry_after: int  # whole seconds until the next window starts, at least 1

    @classmethod
    def at(cls, now: float) -> Window:
        index = int(now // WINDOW_SECONDS)
        ends = (index + 1) * WINDOW_SECONDS
        return cls(index, max(1, math.ceil(ends - now)))


class Counter(Protocol):
    async def hit(self, account_id: int, window: int) -> int:
        """Counts one request and returns the account's count in this window."""
        ...

    async def peek(self, account_id: int, window: int) -> int: ...

    async def close(self) -> None: ...


class LocalCounter:
    """Counts of this process only; keeps just the current window."""

    def __init__(self) -> None:
        self._window = -1
        self._counts: dict[int, int] = {}

    def _roll(self, window: int) -> None:
        if window != self._window:
            self._window = window
            self._counts = {}

    async def hit(self, account_id: int, window: int) -> int:
        self._roll(window)
        count = self._counts.get(account_id, 0) + 1
        self._counts[account_id] = count
        return count

    async def peek(self, account_id: int, window: int) -> int:
        self._roll(window)
        return self._counts.get(account_id, 0)

    async def close(self) -> None:
        return None


class RedisCounter:
    """Counts shared by every process using the same Redis and key prefix."""

    RETRY_SECONDS = 5.0
    TIMEOUT_SECONDS = 0.5

    def __init__(self, url: str, prefix: str) -> None:
        self._url = url
        self._prefix = prefix
        self._client: object | None = None
        self._local = LocalCounter()
        self._down_until = 0.0

    def _redis(self):  # type: ignore[no-untyped-def]
        if self._client is None:
            import redis.asyncio

            # Created lazily, inside the worker's own event loop.
            self._client = redis.asyncio.Redis.from_url(
                self._url, socket_timeout=self.TIMEOUT_SECONDS,
                socket_connect_timeout=self.TIMEOUT_SECONDS,
            )
        return self._client

    def _key(self, account_id: int, window: int) -> str:
        return f"{self._prefix}ratelimit:{account_id}:{window}"

    def _available(self) -> bool:
        return time.monotonic() >= self._down_until

    def _unavailable(self, error: Exception) -> None:
        # The class name only: a message could echo connection details.
        log.warning("rate limits: Redis unreachable (%s); counting in this process for %.0f s",
                    type(error).__name__, self.RETRY_SECONDS)
        self._down_until = time.monotonic() + self.RETRY_SECONDS

    async def hit(self, account_id: int, window: int) -> int:
        if self._available():
            from redis.exceptions import RedisError

            key = self._key(account_id, window)
            try:
                async with self._redis().pipeline(transaction=True) as pipe:
                    pipe.incr(key)
                    pipe.expire(key, WINDOW_SECONDS + 5)
                    count, _ = await pipe.execute()
                return int(count)
            except (RedisError, OSError) as error:
                self._unavailable(error)
        return await self._local.hit(account_id, window)

    async def peek(self, account_id: int, window: int) -> int:
        if self._available():
            from redis.exceptions import RedisError

            try:
                value = await self._redis().get(self._key(account_id, window))
                return int(value or 0)
            except (RedisError, OSError) as error:
                self._unavailable(error)
        return await self._local.peek(account_id, window)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()  # type: ignore[attr-defined]
            self._client = None


def counter_for(redis_url: str | None, prefix: str) -> Counter:
    return RedisCounter(redis_url, prefix) if redis_url else LocalCounter()


class RateLimit:
    """ASGI middleware enforcing `limit` requests a minute per account."""

    def __init__(self, app: ASGIApp, runtime: Runtime, limit: int, counter: Counter) -> None:
        self.app = app
        self.runtime = runtime
        self.limit = limit
        self.counter = counter
        self._limit_header = str(limit).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        store = self.runtime.store
        if scope["type"] != "http" or store is None:
            await self.app(scope, receive, send)
            return
        try:
            account_id = await self.runtime.accounts.account_id(store, header(scope, b"host"))
        except Exception:  # the application answers in the error format
            await self.app(scope, receive, send)
            return
        window = Window.at(time.time())
        counted = header(scope, b"authorization") is not None
        if counted:
            count = await self.counter.hit(account_id, window.index)
        else:
            count = await self.counter.peek(account_id, window.index)
        remaining = max(0, self.limit - count)
        if counted and count > self.limit:
            response = error_response(
                429, "TooManyRequests", "Too many requests",
                f"This account may make {self.limit} requests a minute;"
                f" retry in {window.retry_after} seconds.",
                {"X-Rate-Limit": str(self.limit), "X-Rate-Limit-Remaining": "0",
                 "Retry-After": str(window.retry_after)},
            )
            await response(scope, receive, send)
            return
        extra = [(b"x-rate-limit", self._limit_header),
                 (b"x-rate-limit-remaining", str(remaining).encode())]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
