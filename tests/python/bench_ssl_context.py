"""Handshakes per second through ``Manager.ssl_context()`` (SNI lookup in the engine, a cached
per-certificate context) versus a plain ``SSLContext`` loaded with the same certificate.
Prints figures (target: within 10 %); asserts nothing about time.

    python tests/python/bench_ssl_context.py
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import List

import certmagic

NAME = "bench.example.test"
ROUNDS = 5
HANDSHAKES = 400


def serve(ctx: ssl.SSLContext, sock: socket.socket, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            conn, _ = sock.accept()
        except OSError:
            return
        try:
            with ctx.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)
        except (OSError, ssl.SSLError):
            pass


def rate(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> float:
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    stop = threading.Event()
    t = threading.Thread(target=serve, args=(server_ctx, sock, stop), daemon=True)
    t.start()
    start = time.perf_counter()
    for _ in range(HANDSHAKES):
        with socket.create_connection(("127.0.0.1", port)) as raw:
            with client_ctx.wrap_socket(raw, server_hostname=NAME):
                pass
    elapsed = time.perf_counter() - start
    stop.set()
    sock.close()
    return HANDSHAKES / elapsed


def main() -> None:
    folder = Path(tempfile.mkdtemp())
    crt, key = folder / "c.pem", folder / "k.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "30",
         "-subj", f"/CN={NAME}", "-addext", f"subjectAltName=DNS:{NAME}", "-keyout", str(key), "-out", str(crt)],
        check=True, capture_output=True,
    )
    manager = certmagic.Manager(certmagic.Config(ca="https://127.0.0.1:1/dir", storage=str(folder / "storage")))
    manager.add_certificate(crt.read_text(), key.read_text())
    ours = manager.ssl_context(alpn_protocols=["http/1.1"])
    plain = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    plain.set_alpn_protocols(["http/1.1"])
    plain.load_cert_chain(str(crt), str(key))
    client = ssl.create_default_context(cafile=str(crt))
    client.maximum_version = ssl.TLSVersion.TLSv1_3
    a: List[float] = []
    b: List[float] = []
    for _ in range(ROUNDS):  # alternate, so machine noise hits both alike
        a.append(rate(ours, client))
        b.append(rate(plain, client))
    best_ours, best_plain = max(a), max(b)
    print(f"ssl_context() (SNI via certmagic): {best_ours:8.0f} handshakes/s   (runs: {', '.join(f'{x:.0f}' for x in a)})")
    print(f"plain SSLContext, same certificate: {best_plain:8.0f} handshakes/s   (runs: {', '.join(f'{x:.0f}' for x in b)})")
    print(f"ratio: {best_ours / best_plain:.3f} (target: >= 0.90)")
    manager.close()


if __name__ == "__main__":
    main()
