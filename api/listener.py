"""The read listener's app: the API and the dashboards on one port, behind one access check.

``/api/...`` goes to the read API; every other path to the dashboards (a WSGI app, run on a
thread pool) when they are served, else to the API's JSON 404. With a :data:`ReadAccess`, every
request needs a read token (:class:`~api.access.RequireReader`); TLS is the server's (the same
certificate as the OTLP ports).
"""

from __future__ import annotations

from typing import Any

from a2wsgi import WSGIMiddleware
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from api.access import ReadAccess, RequireReader
from api.limits import ApiLimits
from api.priority import YieldingWsgi

# Dash callbacks that run analyses take seconds; this many run at once (the API has its own
# slots, see api.guard)
DASHBOARD_THREADS = 8


class _Dispatch:
    def __init__(self, api: ASGIApp | None, dashboards: ASGIApp | None) -> None:
        self.api = api
        self.dashboards = dashboards

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        wants_api = path == "/api" or path.startswith("/api/")
        if self.api is not None and (wants_api or self.dashboards is None):
            await self.api(scope, receive, send)
        elif self.dashboards is not None:
            await self.dashboards(scope, receive, send)
        else:
            await _NOTHING(scope, receive, send)


_NOTHING = JSONResponse({"error": "not_found", "detail": "this listener serves nothing"}, 404)


def create_read_app(
    api: ASGIApp | None,
    dashboards: Any | None = None,
    *,
    access: ReadAccess | None = None,
    nice: int = ApiLimits().nice,
) -> ASGIApp:
    """One ASGI app: ``api`` (ASGI, or None) under ``/api/``, ``dashboards`` (a WSGI app such
    as Dash's Flask server, or None, run at the readers' ``nice`` value) elsewhere; every
    request checked by ``access`` when given."""
    wsgi: ASGIApp | None = None
    if dashboards is not None:
        wsgi = WSGIMiddleware(  # type: ignore[assignment]
            YieldingWsgi(dashboards, nice), workers=DASHBOARD_THREADS
        )
    app: ASGIApp = _Dispatch(api, wsgi)
    if access is not None:
        app = RequireReader(app, access)
    return app
