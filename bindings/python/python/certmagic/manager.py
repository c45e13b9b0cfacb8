"""``certmagic.Manager``: the native manager plus what serving needs in Python."""

from __future__ import annotations

import ssl
from typing import Any, Optional, Sequence

from . import _certmagic, _tls


class Manager(_certmagic.Manager):
    """Obtains, renews and serves certificates for names.

    ``manage_sync`` and the other ``*_sync`` methods block (without holding the GIL); ``manage``
    and the others are awaitable. Use it as a context manager (``with`` / ``async with``) or call
    ``close()``.
    """

    def ssl_context(
        self,
        *,
        alpn_protocols: Sequence[str] = ("h2", "http/1.1"),
        default_server_name: Optional[str] = None,
    ) -> ssl.SSLContext:
        """An ``ssl.SSLContext`` serving this manager's certificates by SNI, for any server that
        takes an ``SSLContext``. Its ``sni_callback`` looks the name up in memory and swaps in a
        per-certificate context, built once per certificate (renewals are picked up).

        The stdlib ``ssl`` module cannot see ALPN in ``sni_callback``, so this context does not
        answer TLS-ALPN-01: use HTTP-01 (``certmagic.asgi``/``wsgi`` middleware or the standalone
        solver) or ``certmagic.serve_tls``.
        """
        return _tls.ContextCache(self, alpn_protocols, default_server_name).server_context()

    async def __aenter__(self) -> "Manager":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()
