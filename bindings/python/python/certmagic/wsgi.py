"""WSGI middleware: answers HTTP-01 challenges and redirects plain HTTP to HTTPS."""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, List, Tuple

from ._certmagic import Manager, https_redirect_location
from .asgi import CHALLENGE_PREFIX

StartResponse = Callable[..., Any]
WSGIApp = Callable[[Dict[str, Any], StartResponse], Iterable[bytes]]


class ACMEWSGIMiddleware:
    """Wraps a WSGI app as ``ACMEMiddleware`` wraps an ASGI one."""

    def __init__(self, app: WSGIApp, manager: Manager, *, redirect_http: bool = True, https_port: int = 443) -> None:
        self.app = app
        self.manager = manager
        self.redirect_http = redirect_http
        self.https_port = https_port

    def __call__(self, environ: Dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")
        if path.startswith(CHALLENGE_PREFIX) and environ.get("REQUEST_METHOD") == "GET":
            answer = self.manager.http_challenge_answer_sync(host, path)
            if answer is not None:
                body = answer.encode()
                headers: List[Tuple[str, str]] = [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
                start_response("200 OK", headers)
                return [body]
        if self.redirect_http and environ.get("wsgi.url_scheme") == "http":
            query = environ.get("QUERY_STRING", "")
            location = https_redirect_location(host, self.https_port, path + (f"?{query}" if query else ""))
            if location is not None:
                start_response("308 Permanent Redirect", [("Location", location), ("Content-Length", "0")])
                return [b""]
        return self.app(environ, start_response)
