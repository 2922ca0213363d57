"""The ASGI application: routes, startup and shutdown."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ..config import Settings
from ..store import open_store
from ..store.urls import DatabaseUrl
from . import events, openapi, profiles, users
from .context import Runtime, endpoint
from .errors import any_exception, http_exception
from .ratelimit import RateLimit, counter_for


class JsonSuffix:
    """Answers every path with a `.json` suffix too, as the wider API does."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].endswith(".json"):
            scope = dict(scope)
            scope["path"] = scope["path"][: -len(".json")]
            scope["raw_path"] = scope["path"].encode()
        await self.app(scope, receive, send)


def routes(runtime: Runtime) -> list[Route]:
    def read(handler, **kw):  # type: ignore[no-untyped-def]
        return endpoint(runtime, handler, write=False, **kw)

    def write(handler):  # type: ignore[no-untyped-def]
        return endpoint(runtime, handler, write=True)

    def methods(path: str, table: dict) -> list[Route]:  # type: ignore[type-arg]
        # One Route per path, so that a wrong method is a 405 naming the allowed ones.
        async def dispatch(request: Request) -> Response:
            # Starlette answers HEAD wherever GET is allowed; it is a GET without the body.
            method = "GET" if request.method == "HEAD" else request.method
            return await table[method](request)

        allowed = list(table)
        return [Route(path, dispatch, methods=allowed, name=path, include_in_schema=False)]

    async def openapi_document(_request: Request) -> Response:
        return Response(openapi.document_bytes(), media_type="application/json")

    return [
        Route("/api/v2/openapi", openapi_document, methods=["GET"]),
        *methods("/api/v2/user_profiles", {
            "GET": read(profiles.get_by_query),
            "PUT": write(profiles.put_by_query),
            "PATCH": write(profiles.patch_by_query),
            "DELETE": write(profiles.delete_by_query),
        }),
        # Before /user_profiles/{profile_id}, which would otherwise take "events" for an id.
        *methods("/api/v2/user_profiles/events", {
            "GET": read(events.list_for_query),
            "POST": write(events.track),
        }),
        *methods("/api/v2/user_profiles/{profile_id}/events", {
            "GET": read(events.list_for_profile),
            "POST": write(events.track_for_profile),
        }),
        *methods("/api/v2/user_profiles/{profile_id}", {
            "GET": read(profiles.get_by_id),
            "PUT": write(profiles.replace_by_id),
            "PATCH": write(profiles.patch_by_id),
            "DELETE": write(profiles.delete_by_id),
        }),
        *methods("/api/v2/users", {"POST": write(users.create_user)}),
        *methods("/api/v2/users/me", {"GET": read(users.me, agents_only=False)}),
        *methods("/api/v2/users/{user_id}", {"GET": read(users.get_user)}),
        *methods("/api/v2/users/{user_id}/profiles", {
            "GET": read(profiles.list_for_user),
            "PUT": write(profiles.put_for_user),
        }),
        *methods("/api/v2/users/{user_id}/events", {
            "GET": read(events.list_for_user),
            "POST": write(events.track_for_user),
        }),
        *methods("/api/v2/users/{user_id}/identities", {
            "GET": read(users.list_identities),
            "POST": write(users.add_identity),
        }),
    ]


def create_app(settings: Settings | None = None) -> ASGIApp:
    settings = settings or Settings.from_env()
    runtime = Runtime(settings)
    # Off by default, and then not installed at all.
    counter = counter_for(settings.redis_url, settings.redis_prefix) if settings.rate_limit else None

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        read_url = settings.read_database_url
        runtime.store = await open_store(
            DatabaseUrl.parse(settings.database_url), pool_size=settings.pool_size,
            read_url=DatabaseUrl.parse(read_url) if read_url else None,
            busy_timeout_ms=settings.sqlite_busy_timeout_ms,
        )
        try:
            yield
        finally:
            if counter is not None:
                await counter.close()
            await runtime.store.close()

    app = Starlette(
        routes=routes(runtime),
        lifespan=lifespan,
        exception_handlers={HTTPException: http_exception, Exception: any_exception},
    )
    wrapped: ASGIApp = JsonSuffix(app)
    if counter is not None:
        wrapped = RateLimit(wrapped, runtime, settings.rate_limit, counter)
    return wrapped


def create_app_from_env() -> ASGIApp:
    """The factory `serve` hands to the ASGI server, so that each worker builds its own app."""
    return create_app(Settings.from_env())
