"""ASGI middleware: answers HTTP-01 challenges and redirects plain HTTP to HTTPS."""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Dict, List, MutableMapping, Optional, Tuple

from ._certmagic import Manager, https_redirect_location

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CHALLENGE_PREFIX = "/.well-known/acme-challenge/"


def _header(scope: Scope, name: bytes) -> Optional[str]:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


class ACMEMiddleware:
    """Wraps an ASGI app: ``GET /.well-known/acme-challenge/<token>`` for an active challenge is
    answered (from this process or the shared storage), and with ``redirect_http`` other plain
    HTTP requests get a 308 to HTTPS."""

    def __init__(self, app: ASGIApp, manager: Manager, *, redirect_http: bool = True, https_port: int = 443) -> None:
        self.app = app
        self.manager = manager
        self.redirect_http = redirect_http
        self.https_port = https_port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        host = _header(scope, b"host") or ""
        if path.startswith(CHALLENGE_PREFIX) and scope.get("method") == "GET":
            answer = await self.manager.http_challenge_answer(host, path)
            if answer is not None:
                await _respond(send, 200, answer.encode(), [(b"content-type", b"text/plain")])
                return
        if self.redirect_http and scope.get("scheme") == "http":
            query = bytes(scope.get("query_string", b"")).decode("latin-1")
            location = https_redirect_location(host, self.https_port, path + (f"?{query}" if query else ""))
            if location is not None:
                await _respond(send, 308, b"", [(b"location", location.encode("latin-1"))])
                return
        await self.app(scope, receive, send)


async def _respond(send: Send, status: int, body: bytes, headers: List[Tuple[bytes, bytes]]) -> None:
    start: Dict[str, Any] = {
        "type": "http.response.start",
        "status": status,
        "headers": headers + [(b"content-length", str(len(body)).encode())],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body})
