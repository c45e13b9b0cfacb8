"""SSLContexts for certificates held by the engine: one per certificate, built on first use and
swapped in by ``sni_callback``. Key material goes from memory to OpenSSL through an anonymous
in-memory file (``memfd``) where the system has one, else a private temporary file removed at
once; it is never left on disk."""

from __future__ import annotations

import os
import ssl
import tempfile
import threading
from typing import TYPE_CHECKING, Dict, Optional, Sequence, Tuple

if TYPE_CHECKING:
    from ._certmagic import Certificate, Manager


def new_context(alpn_protocols: Sequence[str]) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if alpn_protocols:
        ctx.set_alpn_protocols(list(alpn_protocols))
    return ctx


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def load_certificate(ctx: ssl.SSLContext, cert: "Certificate") -> None:
    """Loads the chain and key of ``cert`` into ``ctx``."""
    data = (cert.chain_pem + cert.key_pem).encode()
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is not None:
        fd = memfd_create("certmagic-certificate", getattr(os, "MFD_CLOEXEC", 0))
        try:
            _write_all(fd, data)
            ctx.load_cert_chain(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="certmagic-") as folder:  # mode 0700
        path = os.path.join(folder, "certificate.pem")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)
        ctx.load_cert_chain(path)


def certificate_context(cert: "Certificate", alpn_protocols: Sequence[str]) -> ssl.SSLContext:
    ctx = new_context(alpn_protocols)
    load_certificate(ctx, cert)
    return ctx


class ContextCache:
    """Contexts by certificate (shared by every name a certificate serves), found by name."""

    def __init__(self, manager: "Manager", alpn_protocols: Sequence[str], default_server_name: Optional[str]) -> None:
        self._manager = manager
        self._alpn = list(alpn_protocols)
        self._default = default_server_name
        self._by_name: Dict[str, Tuple[bytes, ssl.SSLContext]] = {}
        self._by_hash: Dict[bytes, ssl.SSLContext] = {}
        self._lock = threading.Lock()

    def server_context(self) -> ssl.SSLContext:
        ctx = new_context(self._alpn)
        ctx.sni_callback = self._sni
        return ctx

    def context_for(self, name: str) -> Optional[ssl.SSLContext]:
        """The context for ``name``: a dict lookup while its certificate is unchanged."""
        cert = self._manager.get_certificate(name)
        if cert is None:
            return None
        return self.context_for_certificate(name, cert)

    def context_for_certificate(self, name: str, cert: "Certificate") -> ssl.SSLContext:
        """The context serving ``cert`` (built once per certificate), remembered for ``name``."""
        digest = cert.hash
        hit = self._by_name.get(name)
        if hit is not None and hit[0] == digest:
            return hit[1]
        with self._lock:
            ctx = self._by_hash.get(digest)
            if ctx is None:
                ctx = certificate_context(cert, self._alpn)
                if len(self._by_hash) >= _MAX_CONTEXTS:  # renewed certificates leave old entries
                    self._by_hash.clear()
                    self._by_name.clear()
                self._by_hash[digest] = ctx
            if len(self._by_name) >= _MAX_NAMES:  # a wildcard certificate serves any number of names
                self._by_name.clear()
            self._by_name[name] = (digest, ctx)
            return ctx

    def _sni(self, sslobj: ssl.SSLObject, server_name: Optional[str], _ctx: ssl.SSLContext) -> Optional[int]:
        name = server_name or self._default
        ctx = self.context_for(name) if name else None
        if ctx is None:
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        sslobj.context = ctx
        return None


_MAX_CONTEXTS = 10_000
_MAX_NAMES = 100_000
