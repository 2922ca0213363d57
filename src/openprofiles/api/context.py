"""What every endpoint gets: the store, the settings, the account and the caller.

`endpoint` wraps a handler with account resolution, authentication, the role and scope
checks and the mapping of every failure to the error format, so handlers hold only their own
logic. Every API endpoint goes through it, so all get the same access rules.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from ..config import Settings
from ..service.users import Principal, SignIns
from ..store.base import Account, Store
from . import auth
from .errors import from_exception
from .headers import header


class Runtime:
    """The long-lived parts of a running server; the store is opened at startup."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store: Store | None = None
        self.accounts = auth.AccountDirectory()
        self.signins = SignIns()


@dataclass(slots=True)
class Call:
    request: Request
    store: Store
    settings: Settings
    account: Account
    principal: Principal

    @property
    def account_id(self) -> int:
        return self.account.id

    @property
    def base_url(self) -> str:
        # Building it parses the Host header into a URL: remembered for the few that come.
        scope = self.request.scope
        key = (scope["scheme"], header(scope, b"host"), scope.get("server"),
               scope.get("root_path", ""))
        url = _base_urls.get(key)
        if url is None:
            if len(_base_urls) >= _MAX_BASE_URLS:
                _base_urls.clear()
            url = _base_urls[key] = str(self.request.base_url).rstrip("/")
        return url


_MAX_BASE_URLS = 256
_base_urls: dict[tuple[object, ...], str] = {}


Handler = Callable[[Call], Awaitable[Response]]


def endpoint(
    runtime: Runtime, handler: Handler, *, write: bool, agents_only: bool = True
) -> Callable[[Request], Awaitable[Response]]:
    """`write` is the permission the endpoint needs: it decides both the role check (read-only
    agents may not write) and the OAuth scope check (`write`/`users:write` for writes, any
    scope for reads). `agents_only=False` lets every role in (only `/users/me`)."""

    async def run(request: Request) -> Response:
        try:
            store = runtime.store
            assert store is not None, "the store opens at startup"
            account_id = await runtime.accounts.account_id(store, header(request.scope, b"host"))
            found = await auth.authenticate(store, account_id, request, runtime.signins)
            assert found.principal is not None and found.account is not None
            auth.require(found.principal, write=write, agents_only=agents_only)
            return await handler(
                Call(request, store, runtime.settings, found.account, found.principal)
            )
        except Exception as error:  # every failure leaves in the error format
            return from_exception(error)

    run.__name__ = handler.__name__
    return run
