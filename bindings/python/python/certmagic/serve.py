"""Serving over TLS.

``serve_tls``: an asyncio TLS server that reads each connection's ClientHello before TLS starts
(parsed by the engine), so it answers TLS-ALPN-01 validations and picks certificates by SNI
without blocking the event loop, on-demand certificates included (a new name is decided on and
obtained while the loop serves everyone else). Hands each ordinary connection to your handler as
asyncio streams, like ``asyncio.start_server``. (``Manager.ssl_context()`` cannot do on-demand
TLS: OpenSSL's SNI callback cannot wait; it serves cached certificates only.)

``https``/``serve_https``: the one-liner: an ASGI or WSGI app over HTTPS with HTTP-01 answered and
plain HTTP redirected, served by Hypercorn (``pip install certmagic[serve]``): a maintained
ASGI+WSGI server with HTTP/2 whose configuration accepts our ``SSLContext``.
"""

from __future__ import annotations

import asyncio
import inspect
import socket
from typing import Any, Awaitable, Callable, Iterable, Literal, Optional, Sequence, Set

from . import _tls
from ._certmagic import Config, peek_client_hello
from .errors import Error
from .manager import Manager

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

ACME_TLS_ALPN = b"acme-tls/1"


async def _readable(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
    ready = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(sock.fileno(), wake)
    try:
        await ready
    finally:
        loop.remove_reader(sock.fileno())


class TLSServer:
    """A running ``serve_tls`` server."""

    def __init__(
        self,
        manager: Manager,
        handler: Handler,
        sock: socket.socket,
        alpn_protocols: Sequence[str],
        handshake_timeout: float,
        default_server_name: Optional[str],
    ) -> None:
        self._manager = manager
        self._handler = handler
        self._sock = sock
        self._alpn = list(alpn_protocols)
        self._timeout = handshake_timeout
        self._contexts = _tls.ContextCache(manager, alpn_protocols, default_server_name)
        self._tasks: Set["asyncio.Task[None]"] = set()
        self._accepting: Optional["asyncio.Task[None]"] = None

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    def start(self) -> None:
        self._accepting = asyncio.ensure_future(self._accept_loop())

    async def serve_forever(self) -> None:
        if self._accepting is None:
            self.start()
        assert self._accepting is not None
        await self._accepting

    def close(self) -> None:
        if self._accepting is not None:
            self._accepting.cancel()
        for task in list(self._tasks):
            task.cancel()
        self._sock.close()

    async def _accept_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            conn, _ = await loop.sock_accept(self._sock)
            task = asyncio.ensure_future(self._connection(conn))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _peek(self, conn: socket.socket) -> "tuple[Optional[str], list[bytes]]":
        loop = asyncio.get_running_loop()
        while True:
            await _readable(loop, conn)
            data = conn.recv(_MAX_HELLO, socket.MSG_PEEK)
            if not data:
                raise ConnectionError("closed before the ClientHello")
            hello = peek_client_hello(data)
            if hello is not None:
                return hello
            if len(data) >= _MAX_HELLO:
                raise ConnectionError("ClientHello too large")
            await asyncio.sleep(0.005)  # the rest of the ClientHello is on its way

    async def _connection(self, conn: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        conn.setblocking(False)
        try:
            server_name, alpn = await asyncio.wait_for(self._peek(conn), self._timeout)
            challenge = alpn == [ACME_TLS_ALPN]
            if challenge:
                cert = await self._manager.tls_alpn_challenge_certificate(server_name or "", alpn)
                ctx = _tls.certificate_context(cert, ["acme-tls/1"]) if cert is not None else None
            else:
                name = server_name or self._contexts._default
                ctx = self._contexts.context_for(name) if name else None
                if ctx is None and name:
                    # Not cached: storage, or an on-demand certificate, awaited without
                    # blocking the event loop (this connection waits, others go on).
                    cert = await self._manager.certificate_for_handshake(name, alpn)
                    ctx = self._contexts.context_for_certificate(name, cert)
            if ctx is None:
                conn.close()
                return
            reader = asyncio.StreamReader()
            protocol = asyncio.StreamReaderProtocol(reader)
            transport, _ = await loop.connect_accepted_socket(
                lambda: protocol, conn, ssl=ctx, ssl_handshake_timeout=self._timeout
            )
            writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        except (OSError, asyncio.TimeoutError, Error, ConnectionError):
            conn.close()
            return
        if challenge:
            writer.close()
            return
        try:
            await self._handler(reader, writer)
        finally:
            if not writer.is_closing():
                writer.close()


async def serve_tls(
    manager: Manager,
    handler: Handler,
    host: str = "0.0.0.0",
    port: int = 443,
    *,
    alpn_protocols: Sequence[str] = ("http/1.1",),
    handshake_timeout: float = 10.0,
    default_server_name: Optional[str] = None,
) -> TLSServer:
    """Starts a TLS server on ``host:port`` and returns it (``close()`` stops it). Each
    connection's ClientHello is read before TLS starts: a CA's TLS-ALPN-01 validation is answered
    with the challenge certificate; other connections get the certificate for their SNI (or
    ``default_server_name``): cached, from storage, or with on-demand TLS obtained for them; and
    are handed to ``handler(reader, writer)``. Configure the manager
    with ``alt_tls_alpn_port`` equal to ``port`` so its TLS-ALPN-01 solver leaves the port to this
    server."""
    sock = socket.create_server((host, port), reuse_port=False)
    sock.setblocking(False)
    server = TLSServer(manager, handler, sock, alpn_protocols, handshake_timeout, default_server_name)
    server.start()
    return server


def _is_asgi(app: Any) -> bool:
    call = app if inspect.isfunction(app) or inspect.ismethod(app) else getattr(app, "__call__", None)
    return inspect.iscoroutinefunction(call)


async def serve_https(
    names: Iterable[str],
    app: Any,
    *,
    config: Optional[Config] = None,
    manager: Optional[Manager] = None,
    host: str = "0.0.0.0",
    http_port: int = 80,
    https_port: int = 443,
    mode: Optional[Literal["asgi", "wsgi"]] = None,
    shutdown_trigger: Optional[Callable[[], Awaitable[Any]]] = None,
) -> None:
    """Serves ``app`` (ASGI, or WSGI) over HTTPS for ``names`` until ``shutdown_trigger``
    completes (default: SIGINT/SIGTERM). Binds both ports, then obtains (or loads) the
    certificates, answering HTTP-01 on ``http_port``, which otherwise redirects to HTTPS.
    Without a ``config``, Let's Encrypt with its terms agreed."""
    from hypercorn.asyncio import serve
    from hypercorn.config import Config as HypercornConfig

    from .asgi import ACMEMiddleware
    from .wsgi import ACMEWSGIMiddleware

    if manager is None:
        manager = Manager(
            config
            or Config(agreed=True, alt_http_port=http_port, alt_tls_alpn_port=https_port, disable_tls_alpn_challenge=True)
        )
    chosen = manager

    class _Config(HypercornConfig):
        @property
        def ssl_enabled(self) -> bool:
            return True

        def create_ssl_context(self) -> Any:
            return chosen.ssl_context(alpn_protocols=self.alpn_protocols)

    hypercorn_config = _Config()
    hypercorn_config.bind = [f"{host}:{https_port}"]
    hypercorn_config.insecure_bind = [f"{host}:{http_port}"]
    hypercorn_config.accesslog = None
    kind = mode or ("asgi" if _is_asgi(app) else "wsgi")
    wrapped: Any = (
        ACMEMiddleware(app, manager, https_port=https_port)
        if kind == "asgi"
        else ACMEWSGIMiddleware(app, manager, https_port=https_port)
    )
    kwargs: dict[str, Any] = {"mode": kind}
    if shutdown_trigger is not None:
        kwargs["shutdown_trigger"] = shutdown_trigger
    serving = asyncio.ensure_future(serve(wrapped, hypercorn_config, **kwargs))
    try:
        # The plain port must be ours before the CA calls back (else the standalone solver
        # would take it and the server could not bind).
        await _listening(serving, "127.0.0.1" if host in ("0.0.0.0", "::", "") else host, http_port)
        await manager.manage(list(names))
        await serving
    finally:
        if not serving.done():
            serving.cancel()


async def _listening(serving: "asyncio.Future[Any]", host: str, port: int, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if serving.done():
            serving.result()  # raises why the server stopped
            raise RuntimeError("the server stopped before serving")
        try:
            _, writer = await asyncio.open_connection(host, port)
            writer.close()
            return
        except OSError:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.02)


def https(names: Iterable[str], app: Any, **kwargs: Any) -> None:
    """The one-liner: ``certmagic.https(["example.com"], app)`` serves an ASGI or WSGI app over
    HTTPS on 443, redirecting HTTP on 80. Keyword arguments as ``serve_https``."""
    asyncio.run(serve_https(names, app, **kwargs))


_MAX_HELLO = 16384
