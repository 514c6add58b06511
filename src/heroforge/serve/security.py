"""Who may talk to the server, and which files a request may name.

The server can cancel training jobs and rewrite overrides, and it reads files under the
manager root and the prepared folders. So:
- bound to a loopback address it may run without a token, but then it answers only requests
  whose Host header is a loopback name (a web page elsewhere cannot reach it through DNS
  rebinding); any other address needs a token, and with a token every request must carry it;
- a POST must be JSON and, when the browser says where it comes from (Origin), come from this
  server: a form on another site cannot send one;
- every name in a URL is matched against a strict pattern, and every resolved path must stay
  inside the folder it belongs to (symlinks included); anything else is "not found".
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi import HTTPException
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from heroforge.errors import UserError

TOKEN = re.compile(r"[A-Za-z0-9._~-]{16,256}")  # what secrets.token_urlsafe() writes
JOB_ID = re.compile(r"[0-9]{1,9}")
GRID_NAME = re.compile(r"grid-[0-9]{6,9}(\.[0-9]{3})?kimg\.png")
THUMB_NAME = re.compile(r"[0-9a-f]{64}\.(jpg|png)")

# The pages' script, style and pictures all come from this server; the token may sit in a
# page's URL, so no Referer header may carry it elsewhere.
HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data: blob:; object-src 'none'; "
        b"base-uri 'none'; frame-ancestors 'none'; form-action 'none'",
    ),
]


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    host = host.strip().strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def check_token(token: str) -> None:
    if not TOKEN.fullmatch(token):
        raise UserError(
            "--token must be 16 to 256 characters of A-Z a-z 0-9 . _ ~ - "
            '(e.g. python -c "import secrets; print(secrets.token_urlsafe())")'
        )


def check_bind(host: str, token: str | None) -> None:
    """Refuse to listen on a non-loopback address without a token: anyone on the network
    could otherwise cancel jobs and read the pictures."""
    if token is not None:
        check_token(token)
    elif not is_loopback(host):
        raise UserError(
            f"--host {host} is reachable from other machines: give a --token (or set "
            "HEROFORGE_TOKEN), or keep the default --host 127.0.0.1"
        )


def checked_name(pattern: re.Pattern[str], value: str, what: str) -> str:
    """value if it matches pattern completely; else 404 (the same answer as a missing file,
    so a probe learns nothing)."""
    if not pattern.fullmatch(value):
        raise HTTPException(404, f"no such {what}")
    return value


def inside(base: Path, *parts: str) -> Path:
    """base/parts resolved (symlinks followed); 404 if that leaves base or does not exist."""
    top = base.resolve()
    path = top.joinpath(*parts).resolve()
    if not path.is_relative_to(top) or not path.exists():
        raise HTTPException(404, "not found")
    return path


def _host_name(host_header: str) -> str:
    """The host part of a Host header: "127.0.0.1:8765" -> "127.0.0.1", "[::1]:80" -> "::1"."""
    if host_header.startswith("["):
        return host_header[1 : host_header.find("]")]
    return host_header.rsplit(":", 1)[0]


def _supplied_token(scope: Scope, headers: Headers) -> str | None:
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
    return values[0] if values else None


class AccessMiddleware:
    """Checks every HTTP request (see the module docstring) and adds the security headers."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token

    def refusal(self, scope: Scope) -> tuple[int, str] | None:
        headers = Headers(scope=scope)
        if self.token is None:
            if not is_loopback(_host_name(headers.get("host", ""))):
                return 400, "this server answers only to localhost (or run it with --token)"
        else:
            supplied = _supplied_token(scope, headers)
            if supplied is None or not hmac.compare_digest(
                supplied.encode("utf-8", "replace"), self.token.encode()
            ):
                return 401, "a valid token is needed (Authorization: Bearer T or ?token=T)"
        if scope["method"] not in ("GET", "HEAD"):
            origin = headers.get("origin")
            if origin and urlsplit(origin).netloc != headers.get("host"):
                return 403, "cross-site request refused"
            if headers.get("content-type", "").split(";")[0].strip() != "application/json":
                return 415, "send JSON (Content-Type: application/json)"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = self.refusal(scope)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in message.get("headers", [])}
                extra = [h for h in HEADERS if h[0] not in names]
                if scope["path"].startswith("/api/") and b"cache-control" not in names:
                    extra.append((b"cache-control", b"no-store"))  # live data
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        if problem is not None:
            status, detail = problem
            response: Any = JSONResponse({"detail": detail}, status_code=status)
            await response(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)
