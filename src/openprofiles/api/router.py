"""The ASGI entry point: lifespan, path matching and method dispatch, and nothing more.

The API has a dozen fixed paths, so matching is a lookup by segment count and a comparison of
literal segments, without regular expressions or middleware layers: every request passes
through here, and each layer it skips is time the request does not spend.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .errors import error_response, from_exception
from .turns import LoopTurn

log = logging.getLogger("openprofiles")

Endpoint = Callable[[Request], Awaitable[Response]]
Lifespan = Callable[[], contextlib.AbstractAsyncContextManager[None]]


@dataclass(frozen=True, slots=True)
class Route:
    """One path template (`/api/v2/users/{user_id}/profiles`) and its endpoint per method."""

    template: str
    methods: Mapping[str, Endpoint]

    @property
    def segments(self) -> tuple[str, ...]:
        return tuple(self.template.strip("/").split("/"))

    @property
    def allow(self) -> str:
        methods = list(self.methods)
        if "GET" in methods:
            methods.append("HEAD")
        return ", ".join(methods)


class _Pattern:
    __slots__ = ("route", "literals", "params", "allow")

    def __init__(self, route: Route) -> None:
        self.route = route
        self.literals = [(i, s) for i, s in enumerate(route.segments) if not s.startswith("{")]
        self.params = [(i, s[1:-1]) for i, s in enumerate(route.segments) if s.startswith("{")]
        self.allow = route.allow

    def match(self, segments: Sequence[str]) -> dict[str, str] | None:
        for index, literal in self.literals:
            if segments[index] != literal:
                return None
        params = {}
        for index, name in self.params:
            if not segments[index]:
                return None
            params[name] = segments[index]
        return params


class Router:
    """Answers each path with a `.json` suffix too, as the wider API does, and HEAD wherever
    GET is allowed; an unknown path is a 404 and a known path's other methods a 405 naming the
    allowed ones, both in the error format. The answers of one turn of the loop are written
    together, once the turn's last request is handled (`turns`)."""

    def __init__(self, routes: Sequence[Route], lifespan: Lifespan) -> None:
        # Earlier routes win: a literal segment (`/user_profiles/events`) is listed before the
        # template it would otherwise match (`/user_profiles/{profile_id}`).
        self._by_length: dict[int, list[_Pattern]] = {}
        for route in routes:
            self._by_length.setdefault(len(route.segments), []).append(_Pattern(route))
        self._lifespan = lifespan
        self._turn = LoopTurn()

    def _find(self, path: str) -> tuple[_Pattern, dict[str, str]] | None:
        segments = path.strip("/").split("/")
        for pattern in self._by_length.get(len(segments), ()):
            params = pattern.match(segments)
            if params is not None:
                return pattern, params
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            response = await self._respond(scope, receive)
            await self._turn.end()
            await response(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._run_lifespan(receive, send)

    async def _respond(self, scope: Scope, receive: Receive) -> Response:
        path = scope["path"]
        if path.endswith(".json"):
            # Handlers and the links they build see the path without the suffix.
            path = scope["path"] = path[: -len(".json")]
            scope["raw_path"] = path.encode()
        found = self._find(path)
        if found is None:
            return error_response(404, "RouteNotFound", "No such route")
        pattern, params = found
        method = scope["method"]
        endpoint = pattern.route.methods.get("GET" if method == "HEAD" else method)
        if endpoint is None:
            return error_response(405, "MethodNotAllowed", "Method not allowed",
                                  f"Allowed methods: {pattern.allow}", {"Allow": pattern.allow})
        scope["path_params"] = params
        try:
            return await endpoint(Request(scope, receive))
        except Exception as error:  # endpoints map their own failures; this is the backstop
            return from_exception(error)

    async def _run_lifespan(self, receive: Receive, send: Send) -> None:
        message = await receive()
        assert message["type"] == "lifespan.startup"
        try:
            async with self._lifespan():
                await send({"type": "lifespan.startup.complete"})
                message = await receive()
                assert message["type"] == "lifespan.shutdown"
        except Exception as error:
            log.exception("startup or shutdown failed")
            kind = "startup" if message["type"] == "lifespan.startup" else "shutdown"
            await send({"type": f"lifespan.{kind}.failed", "message": str(error)})
            return
        await send({"type": "lifespan.shutdown.complete"})

