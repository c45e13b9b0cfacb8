"""Server CPU per full TLS handshake in nginx: with the module (certificate from the library's
cache, the ClientHello peeked at before nginx's own handler) and without it (the same
certificate from `ssl_certificate` files), side by side. Run by `make bench-micro` after
`make test-nginx` (its virtual environment); prints figures, asserts nothing."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import List

sys.path.insert(0, str(Path(__file__).parent))

from conftest import Nginx, acme_settings, fixtures, tls_server, wait_served  # noqa: E402

NAME = "bench.nginx.test"
SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
CLIENTS = 4


def workers(master: int) -> List[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(c) for c in children]


def cpu_seconds(pids: List[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def handshakes(port: int, cafile: str) -> int:
    ctx = ssl.create_default_context(cafile=cafile)
    count = [0] * CLIENTS
    deadline = time.monotonic() + SECONDS

    def client(i: int) -> None:
        while time.monotonic() < deadline:
            with socket.create_connection(("127.0.0.1", port)) as raw:
                with ctx.wrap_socket(raw, server_hostname=NAME):
                    count[i] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(count)


def measure(nginx: Nginx, port: int, cafile: str) -> float:
    pids = workers(nginx.master)
    handshakes(port, cafile)  # warm up
    before = cpu_seconds(pids)
    n = handshakes(port, cafile)
    return (cpu_seconds(pids) - before) / n * 1e6


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="certmagic-nginx-bench-"))
    try:
        for pebble, _ in fixtures._start_pebble(folder):
            storage = folder / "storage"
            with_module = Nginx(
                folder / "module", acme_settings(pebble, storage) + tls_server(pebble.tls_port, [NAME]), workers=1
            ).start()
            try:
                wait_served(pebble.tls_port, [NAME], pebble.root_file)
                ours = measure(with_module, pebble.tls_port, pebble.root_file)
            finally:
                with_module.stop()
            site = next((storage / "certificates").glob(f"*/{NAME}"))
            files = (
                f"server {{\n listen 127.0.0.1:{pebble.tls_port} ssl;\n server_name {NAME};\n"
                f" ssl_certificate {site / (NAME + '.crt')};\n ssl_certificate_key {site / (NAME + '.key')};\n"
                " location / { return 200 \"$ssl_server_name\\n\"; }\n}\n"
            )
            plain = Nginx(folder / "plain", files, workers=1)
            plain.conf.write_text("\n".join(l for l in plain.conf.read_text().splitlines() if "load_module" not in l))
            plain.start()
            try:
                theirs = measure(plain, pebble.tls_port, pebble.root_file)
            finally:
                plain.stop()
            print(f"nginx server CPU per full TLS 1.3 handshake ({CLIENTS} clients, {SECONDS:.0f} s, 1 worker):")
            print(f"  with ngx_http_certmagic_module   {ours:8.1f} µs")
            print(f"  with ssl_certificate files       {theirs:8.1f} µs")
            print(f"  module's share                   {ours - theirs:+8.1f} µs ({(ours / theirs - 1) * 100:+.1f} %)")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
