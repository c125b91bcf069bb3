"""Who may read: the read listener's check of every request, API and dashboards alike.

The token file belongs to the server (its roles are read there); this module only needs an
answer per token, from a :class:`ReadAccess` the server provides. A request carries its token
as ``Authorization: Bearer <token>`` (tools, the client, the CLI) or as the password of HTTP
basic auth (browsers: the dashboards prompt for it; any user name). Refusals are 401 (no or
unknown token) and 403 (a token whose role may not read); the API answers them as JSON, the
dashboards as a short page, with the challenge that makes a browser ask for the token.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass

from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

BEARER_CHALLENGE = 'Bearer realm="flaglens"'
BASIC_CHALLENGE = 'Basic realm="flaglens", charset="UTF-8"'


@dataclass(frozen=True, slots=True)
class Verdict:
    """The answer for one token: the reader's name, or why not (401 or 403)."""

    reader: str | None
    status: int = 200
    detail: str = ""

    @classmethod
    def refused(cls, status: int, detail: str) -> Verdict:
        return cls(None, status, detail)


ReadAccess = Callable[[str | None], Verdict]
"""The verdict for a token as sent (None: the request carried none)."""


def token_of(authorization: str | None) -> str | None:
    """The token in an ``Authorization`` value: a bearer token, or a basic-auth password (the
    user name when the password is empty, as ``curl -u TOKEN:`` sends it)."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return value or None
    if scheme.lower() == "basic":
        try:
            user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return password or user or None
    return None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def _refusal(verdict: Verdict, api: bool) -> Response:
    if api:
        code = "unauthenticated" if verdict.status == 401 else "forbidden"
        response: Response = JSONResponse(
            {"error": code, "detail": verdict.detail}, status_code=verdict.status
        )
        if verdict.status == 401:
            response.headers["WWW-Authenticate"] = f"{BEARER_CHALLENGE}, {BASIC_CHALLENGE}"
        return response
    text = verdict.detail.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    page = (
        "<!doctype html><title>flaglens</title><h1>flaglens dashboards</h1>"
        f"<p>{text}</p><p>Sign in with any user name and a read token as the password "
        "(<code>flaglens auth token --role read</code> makes one).</p>"
    )
    response = HTMLResponse(page, status_code=verdict.status)
    if verdict.status == 401:
        response.headers["WWW-Authenticate"] = BASIC_CHALLENGE
    return response


class RequireReader:
    """ASGI middleware: every HTTP request must carry a token ``access`` lets read."""

    def __init__(self, app: ASGIApp, access: ReadAccess, *, api_prefix: str = "/api/") -> None:
        self.app = app
        self.access = access
        self.api_prefix = api_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        verdict = self.access(token_of(_header(scope, b"authorization")))
        if verdict.reader is None:
            api = str(scope.get("path", "")).startswith(self.api_prefix)
            await _refusal(verdict, api)(scope, receive, send)
            return
        scope.setdefault("state", {})["reader"] = verdict.reader
        await self.app(scope, receive, send)
