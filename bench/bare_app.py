"""The ceiling: a bare ASGI app answering every request with one fixed profile.

It runs under the same server (uvicorn) with the same workers as openprofiles, reads each
request body as openprofiles does, and does nothing else, so that its rate is what the stack
allows on this machine.
"""

from __future__ import annotations

BODY = (
    b'{"profile":{"id":"01HZX4Q4WZ6M0R8G3N1C5V7B9D","source":"shop","type":"customer",'
    b'"name":"person1@example.net","user_id":"2","identifiers":[{"type":"email",'
    b'"value":"person1@example.net"},{"type":"phone_number","value":"+155500000001"}],'
    b'"attributes":{"plan":"basic","visits":1,"score":31,"tags":["bench","shop"]},'
    b'"created_at":"2026-01-01T00:00:00.000Z","updated_at":"2026-01-01T00:00:00.000Z"}}'
)
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
