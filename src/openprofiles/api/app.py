"""The ASGI application: routes, startup and shutdown."""

from __future__ import annotations

import contextlib
import faulthandler
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.types import ASGIApp

from ..config import Settings
from ..store import open_store
from ..store.urls import DatabaseUrl
from . import events, openapi, profiles, users
from .context import Runtime, endpoint
from .ratelimit import RateLimit, counter_for
from .responses import JsonResponse
from .router import Route, Router


def routes(runtime: Runtime) -> list[Route]:
    """Every path of the API; a path that matches a literal before a template comes first."""
    def read(handler, **kw):  # type: ignore[no-untyped-def]
        return endpoint(runtime, handler, write=False, **kw)

    def write(handler):  # type: ignore[no-untyped-def]
        return endpoint(runtime, handler, write=True)

    async def openapi_document(_request: Request) -> JsonResponse:
        return JsonResponse(openapi.document_bytes())

    return [
        Route("/api/v2/openapi", {"GET": openapi_document}),
        Route("/api/v2/user_profiles", {
            "GET": read(profiles.get_by_query),
            "PUT": write(profiles.put_by_query),
            "PATCH": write(profiles.patch_by_query),
            "DELETE": write(profiles.delete_by_query),
        }),
        # Before /user_profiles/{profile_id}, which would otherwise take "events" for an id.
        Route("/api/v2/user_profiles/events", {
            "GET": read(events.list_for_query),
            "POST": write(events.track),
        }),
        Route("/api/v2/user_profiles/{profile_id}/events", {
            "GET": read(events.list_for_profile),
            "POST": write(events.track_for_profile),
        }),
        Route("/api/v2/user_profiles/{profile_id}", {
            "GET": read(profiles.get_by_id),
            "PUT": write(profiles.replace_by_id),
            "PATCH": write(profiles.patch_by_id),
            "DELETE": write(profiles.delete_by_id),
        }),
        Route("/api/v2/users", {"POST": write(users.create_user)}),
        Route("/api/v2/users/me", {"GET": read(users.me, agents_only=False)}),
        Route("/api/v2/users/{user_id}", {"GET": read(users.get_user)}),
        Route("/api/v2/users/{user_id}/profiles", {
            "GET": read(profiles.list_for_user),
            "PUT": write(profiles.put_for_user),
        }),
        Route("/api/v2/users/{user_id}/events", {
            "GET": read(events.list_for_user),
            "POST": write(events.track_for_user),
        }),
        Route("/api/v2/users/{user_id}/identities", {
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
    async def lifespan() -> AsyncIterator[None]:
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

    app: ASGIApp = Router(routes(runtime), lifespan)
    if counter is not None:
        app = RateLimit(app, runtime, settings.rate_limit, counter)
    return app


def create_app_from_env() -> ASGIApp:
    """The factory `serve` hands to the ASGI server, so that each worker builds its own app."""
    # A worker killed by a signal (a fault in a C extension or on a memory-mapped file) would
    # otherwise leave nothing in the log: its clients would only see their connections drop.
    faulthandler.enable()
    return create_app(Settings.from_env())
