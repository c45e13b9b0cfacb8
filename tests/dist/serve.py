"""The clean-room program for Python (make test-dist): with certmagic installed from the wheel
(or the sdist) and its `serve` extra, obtains a certificate through HTTP-01 and serves HTTPS
with the one-liner's server (Hypercorn) until stdin closes. Prints READY once serving.

Usage: serve.py <ca-directory-url> <ca-roots.pem> <http-port> <https-port> <storage-dir> <name>"""

import asyncio
import sys
from typing import Any, MutableMapping

import certmagic


async def app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b"hello from certmagic (python)"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def main() -> None:
    ca, roots, http_port, https_port, storage, name = sys.argv[1:7]
    with open(roots) as f:
        roots_pem = f.read()
    manager = certmagic.Manager(
        certmagic.Config(
            ca=ca,
            trusted_roots_pem=roots_pem,
            email="dist@certmagic-rs.test",
            agreed=True,
            storage=storage,
            alt_http_port=int(http_port),
            listen_host="127.0.0.1",
            disable_tls_alpn_challenge=True,
        )
    )
    loop = asyncio.get_running_loop()
    stdin_closed = loop.run_in_executor(None, sys.stdin.read)

    async def shutdown() -> None:
        await stdin_closed

    serving = asyncio.ensure_future(
        certmagic.serve_https(
            [name],
            app,
            manager=manager,
            host="127.0.0.1",
            http_port=int(http_port),
            https_port=int(https_port),
            shutdown_trigger=shutdown,
        )
    )
    while manager.get_certificate(name) is None:
        if serving.done():
            serving.result()
            raise SystemExit("the server stopped without a certificate")
        await asyncio.sleep(0.05)
    print("READY", flush=True)
    await serving
    await manager.aclose()


asyncio.run(main())
