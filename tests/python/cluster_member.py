"""One Python instance of the fleet in test_cluster.py: the one-liner ``serve_https`` (HTTP-01
only, as Python's ssl module cannot answer TLS-ALPN-01 behind hypercorn) over a shared storage.

    cluster_member.py <ca-directory-url> <ca-roots.pem> <http-port> <https-port> <storage> <name>...

Prints ``OBTAINED <name>`` for each certificate this instance obtained, ``READY`` once every
name has one, and serves until stdin closes. With ``PAUSE_ON_OBTAINING=<name>``, it prints
``OBTAINING <name>`` when it starts obtaining that name (holding the name's storage lock) and
then hangs there, for a test to kill it mid-order.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from typing import Any, Awaitable, Callable, Dict, List, Optional

import certmagic


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main() -> None:
    ca, roots, http_port, https_port, storage = sys.argv[1:6]
    names: List[str] = sys.argv[6:]
    pause_on = os.environ.get("PAUSE_ON_OBTAINING")

    def on_event(event: str, payload: Dict[str, Any]) -> Optional[Awaitable[None]]:
        if event == "cert_obtained":
            say(f"OBTAINED {payload['identifier']}")
        if event == "cert_obtaining" and payload.get("identifier") == pause_on:
            say(f"OBTAINING {pause_on}")
            while True:
                time.sleep(60)
        return None

    with open(roots, "rb") as f:
        roots_pem = f.read()
    config = certmagic.Config(
        ca=ca,
        trusted_roots_pem=roots_pem,
        agreed=True,
        alt_http_port=int(http_port),
        disable_tls_alpn_challenge=True,
        listen_host="127.0.0.1",
        storage=storage,
        on_event=on_event,
    )
    manager = certmagic.Manager(config)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        stdin_closed = loop.create_future()

        def watch_stdin() -> None:
            for _ in sys.stdin:
                pass
            def closed() -> None:
                if not stdin_closed.done():
                    stdin_closed.set_result(None)

            loop.call_soon_threadsafe(closed)

        threading.Thread(target=watch_stdin, daemon=True).start()

        async def ready() -> None:
            while not all(manager.get_certificate(n) is not None for n in names):
                await asyncio.sleep(0.1)
            say("READY")

        async def app(scope: Dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
            if scope["type"] != "http":
                return
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"hello from certmagic-rs (python)\n"})

        watcher = asyncio.ensure_future(ready())

        async def stop() -> None:
            await stdin_closed

        await certmagic.serve_https(
            names,
            app,
            manager=manager,
            host="127.0.0.1",
            http_port=int(http_port),
            https_port=int(https_port),
            mode="asgi",
            shutdown_trigger=stop,
        )
        watcher.cancel()

    try:
        asyncio.run(run())
    finally:
        manager.close()


if __name__ == "__main__":
    main()
