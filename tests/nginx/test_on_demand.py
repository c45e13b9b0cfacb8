"""On-demand TLS in stock nginx: a name the ask endpoint allows gets its certificate during its
first connection (the connection waits before its handshake, the worker's event loop does not);
a refused name never reaches the CA."""

from __future__ import annotations

import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator, List
from urllib.parse import parse_qs, urlparse

import pytest

from conftest import Nginx, Pebble, acme_settings, http_server, tls_get


class Ask:
    """The ask endpoint: allows names starting with "yes", remembers every name asked about."""

    def __init__(self) -> None:
        asked: List[str] = []
        self.asked = asked

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                name = parse_qs(urlparse(self.path).query).get("domain", [""])[0]
                asked.append(name)
                self.send_response(200 if name.startswith("yes") else 403)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/ask"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def ask() -> Iterator[Ask]:
    a = Ask()
    yield a
    a.server.shutdown()


def test_allowed_name_on_first_connection_refused_name_never_ordered(
    pebble: Pebble, ask: Ask, tmp_path: Path, nginxes: List[Nginx]
) -> None:
    http = acme_settings(pebble, tmp_path / "storage") + http_server(pebble.http_port)
    http += (
        f"server {{\n listen 127.0.0.1:{pebble.tls_port} ssl default_server;\n server_name _;\n"
        f" certmagic on;\n certmagic_on_demand ask={ask.url} rate=20/1m;\n"
        " location / { return 200 \"$ssl_server_name\\n\"; }\n}\n"
    )
    nginx = Nginx(tmp_path / "nginx", http, workers=2).start()
    nginxes.append(nginx)

    # a new allowed name: its very first connection gets a certificate Pebble issued
    started = time.monotonic()
    status, body, _ = tls_get(pebble.tls_port, "yes1.od.nginx.test", pebble.root_file, timeout=60)
    first = time.monotonic() - started
    assert (status, body) == (200, b"yes1.od.nginx.test\n"), nginx.log()
    assert pebble.orders() == 1
    print(f"on-demand first connection (ask, order, validation, issue): {first * 1000:.0f} ms")

    # served from the cache afterwards; several new names at once each get theirs
    results: List[BaseException | bytes] = []

    def fetch(name: str) -> None:
        try:
            results.append(tls_get(pebble.tls_port, name, pebble.root_file, timeout=60)[1])
        except BaseException as e:
            results.append(e)

    threads = [threading.Thread(target=fetch, args=(f"yes{i}.od.nginx.test",)) for i in range(1, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r for r in results if isinstance(r, bytes)) == [
        f"yes{i}.od.nginx.test\n".encode() for i in range(1, 5)
    ], results
    assert pebble.orders() == 4

    # a refused name: the handshake fails, nothing is ordered
    with pytest.raises(ssl.SSLError):
        tls_get(pebble.tls_port, "no.od.nginx.test", pebble.root_file)
    assert "no.od.nginx.test" in ask.asked
    assert pebble.orders() == 4
    assert ask.asked.count("yes1.od.nginx.test") <= 2  # once per worker at most: then cached
