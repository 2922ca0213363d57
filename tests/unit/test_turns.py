"""The router writes the answers of one turn of the event loop together (`api.turns`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from openprofiles.api.responses import JsonResponse
from openprofiles.api.router import Route, Router
from openprofiles.api.turns import LoopTurn


@contextlib.asynccontextmanager
async def _no_lifespan() -> AsyncIterator[None]:
    yield


def _router(events: list[str], *, waits_for: asyncio.Event | None = None) -> Router:
    """Each request to /things/{name} is handled at once, except /things/slow, which first
    waits for `waits_for`."""

    async def handle(request: Request) -> Response:
        name = request.path_params["name"]
        if name == "slow":
            assert waits_for is not None
            await waits_for.wait()
        events.append(f"handled {name}")
        return JsonResponse(b'{"name":"%s"}' % name.encode())

    return Router([Route("/things/{name}", {"GET": handle})], _no_lifespan)


async def _request(router: Router, name: str, events: list[str]) -> list[dict[str, Any]]:
    scope = {"type": "http", "method": "GET", "path": f"/things/{name}", "headers": [],
             "query_string": b""}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            events.append(f"sent {name}")
        sent.append(message)

    await router(scope, receive, send)
    return sent


async def test_answers_of_one_turn_go_out_after_its_last_request_is_handled() -> None:
    events: list[str] = []
    router = _router(events)
    answers = await asyncio.gather(*(_request(router, name, events) for name in "abc"))
    assert events == ["handled a", "handled b", "handled c", "sent a", "sent b", "sent c"]
    assert [a[1]["body"] for a in answers] == [b'{"name":"a"}', b'{"name":"b"}', b'{"name":"c"}']
    assert all(a[0]["status"] == 200 for a in answers)


async def test_a_request_still_being_handled_does_not_hold_back_the_others() -> None:
    events: list[str] = []
    go_on = asyncio.Event()
    router = _router(events, waits_for=go_on)
    slow = asyncio.ensure_future(_request(router, "slow", events))
    await asyncio.gather(_request(router, "a", events), _request(router, "c", events))
    assert events == ["handled a", "handled c", "sent a", "sent c"]
    go_on.set()
    await slow
    assert events[4:] == ["handled slow", "sent slow"]


async def test_a_cancelled_request_takes_no_other_answer_with_it() -> None:
    events: list[str] = []
    router = _router(events)
    first = asyncio.ensure_future(_request(router, "a", events))
    second = asyncio.ensure_future(_request(router, "b", events))
    await asyncio.sleep(0)  # both handled, both waiting for the end of the turn
    assert events == ["handled a", "handled b"]
    first.cancel()
    done = await asyncio.wait_for(asyncio.gather(first, second, return_exceptions=True), 1)
    assert isinstance(done[0], asyncio.CancelledError)
    assert done[1][0]["status"] == 200
    assert events == ["handled a", "handled b", "sent b"]


def test_a_turn_left_open_by_a_closed_loop_does_not_hold_the_next_loops_answers() -> None:
    turn = LoopTurn()
    first = asyncio.new_event_loop()
    try:
        async def begin() -> None:
            asyncio.get_running_loop().stop()  # after this callback: the turn never ends
            turn.end()

        first.run_until_complete(begin())
    finally:
        first.close()
    second = asyncio.new_event_loop()
    try:
        async def wait() -> None:
            await asyncio.wait_for(turn.end(), 1)

        second.run_until_complete(wait())
    finally:
        second.close()
