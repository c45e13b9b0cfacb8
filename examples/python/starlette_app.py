"""A Starlette app over automatic HTTPS.

    pip install "certmagic[serve]" starlette
    sudo python examples/python/starlette_app.py example.com you@example.com

Ports 443 and 80 (HTTP-01 and redirects) unless CERTMAGIC_HTTP_PORT / CERTMAGIC_HTTPS_PORT say
otherwise; certificates from Let's Encrypt, kept in ~/.local/share/certmagic (Caddy's layout).
"""

from __future__ import annotations

import os
import sys

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import certmagic


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse(f"Hello over {request.url.scheme} from certmagic-rs\n")


app = Starlette(routes=[Route("/", hello)])


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit("usage: starlette_app.py <domain> [email]")
    http_port = int(os.environ.get("CERTMAGIC_HTTP_PORT", "80"))
    https_port = int(os.environ.get("CERTMAGIC_HTTPS_PORT", "443"))
    config = certmagic.Config(
        email=sys.argv[2] if len(sys.argv) > 2 else None,
        agreed=True,
        alt_http_port=http_port,
        disable_tls_alpn_challenge=True,
    )
    certmagic.https([sys.argv[1]], app, config=config, http_port=http_port, https_port=https_port)


if __name__ == "__main__":
    main()
