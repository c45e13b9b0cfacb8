"""certmagic: automatic HTTPS for Python, on the Rust engine of certmagic-rs.

    import certmagic
    certmagic.https(["example.com"], app)          # ASGI or WSGI app, ports 443 and 80

or, with a manager of your own::

    manager = certmagic.Manager(certmagic.Config(email="you@example.com", agreed=True))
    await manager.manage(["example.com"])
    context = manager.ssl_context()                 # for any server taking an SSLContext
"""

from ._certmagic import (
    GOOGLE_TRUST_SERVICES,
    GOOGLE_TRUST_SERVICES_STAGING,
    LETS_ENCRYPT_PRODUCTION,
    LETS_ENCRYPT_STAGING,
    ZEROSSL,
    Certificate,
    Config,
    __version__,
    https_redirect_location,
    peek_client_hello,
)
from .asgi import ACMEMiddleware
from .errors import (
    AbortedError,
    AcmeError,
    CancelledError,
    CertificateError,
    ChallengeError,
    ConfigError,
    CorruptError,
    Error,
    InternalError,
    InvalidNameError,
    NotFoundError,
    ReentrantError,
    ShutDownError,
    StorageError,
    TimeoutError,
    WrongProcessError,
)
from .manager import Manager
from .serve import TLSServer, https, serve_https, serve_tls
from .wsgi import ACMEWSGIMiddleware

__all__ = [
    "ACMEMiddleware",
    "ACMEWSGIMiddleware",
    "AbortedError",
    "AcmeError",
    "CancelledError",
    "Certificate",
    "CertificateError",
    "ChallengeError",
    "Config",
    "ConfigError",
    "CorruptError",
    "Error",
    "GOOGLE_TRUST_SERVICES",
    "GOOGLE_TRUST_SERVICES_STAGING",
    "InternalError",
    "InvalidNameError",
    "LETS_ENCRYPT_PRODUCTION",
    "LETS_ENCRYPT_STAGING",
    "Manager",
    "NotFoundError",
    "ReentrantError",
    "ShutDownError",
    "StorageError",
    "TLSServer",
    "TimeoutError",
    "WrongProcessError",
    "ZEROSSL",
    "__version__",
    "https",
    "https_redirect_location",
    "peek_client_hello",
    "serve_https",
    "serve_tls",
]
