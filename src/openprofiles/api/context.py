"""What every endpoint gets: the store, the settings, the account and the caller.

`endpoint` wraps a handler with account resolution, authentication, the role check and the
mapping of every failure to the error format, so handlers hold only their own logic.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from ..config import Settings
from ..service.users import Principal
from ..store.base import Account, Store
from . import auth
from .errors import from_exception


class Runtime:
    """The long-lived parts of a running server; the store is opened at startup."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store: Store | None = None


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
        return str(self.request.base_url).rstrip("/")


Handler = Callable[[Call], Awaitable[Response]]


def endpoint(
    runtime: Runtime, handler: Handler, *, write: bool, agents_only: bool = True
) -> Callable[[Request], Awaitable[Response]]:
    async def run(request: Request) -> Response:
        try:
            store = runtime.store
            assert store is not None, "the store opens at startup"
            account = await auth.account_for(store, request)
            principal = await auth.authenticate(store, account, request)
            if agents_only:
                auth.require(principal, write=write)
            return await handler(Call(request, store, runtime.settings, account, principal))
        except Exception as error:  # every failure leaves in the error format
            return from_exception(error)

    run.__name__ = handler.__name__
    return run
