"""Fixtures: a real Pebble (through the shared launcher), configs pointed at it, and helpers
that make real TLS connections verified against Pebble's root."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import pytest

import certmagic

WORKSPACE = Path(__file__).resolve().parents[2]


@dataclass
class Pebble:
    directory_url: str
    management_url: str
    http_port: int
    tls_port: int
    api_ca_pem: str
    root_pem: str
    root_file: str
    api_ca_file: str
    log_file: str

    def orders(self) -> int:
        return Path(self.log_file).read_text().count("Added order")

    def management(self, path: str) -> Any:
        import urllib.request

        ctx = ssl.create_default_context(cafile=self.api_ca_file)
        with urllib.request.urlopen(self.management_url + path, context=ctx, timeout=10) as rsp:
            return json.loads(rsp.read())


def _start_pebble(tmp_path: Path, *args: str) -> Iterator[Tuple[Pebble, Dict[str, Any]]]:
    exe = os.environ.get("CERTMAGIC_PEBBLE_ENV", str(WORKSPACE / "target/debug/pebble-env"))
    proc = subprocess.Popen([exe, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdin is not None
    info: Dict[str, Any] = json.loads(proc.stdout.readline())
    info["proc"] = proc
    root_file = tmp_path / "pebble-root.pem"
    root_file.write_text(info["root_pem"])
    api_ca_file = tmp_path / "pebble-api-ca.pem"
    api_ca_file.write_text(info["api_ca_pem"])
    yield (
        Pebble(
            directory_url=info["directory_url"],
            management_url=info["management_url"],
            http_port=info["http_port"],
            tls_port=info["tls_port"],
            api_ca_pem=info["api_ca_pem"],
            root_pem=info["root_pem"],
            root_file=str(root_file),
            api_ca_file=str(api_ca_file),
            log_file=info["log"],
        ),
        info,
    )
    proc.stdin.close()
    proc.wait(timeout=20)


@pytest.fixture
def pebble(tmp_path: Path) -> Iterator[Pebble]:
    for p, _ in _start_pebble(tmp_path):
        yield p


class OcspResponder:
    """The real OCSP responder pebble-env runs with ``--ocsp`` (``openssl ocsp`` for Pebble's
    intermediate, named in Pebble's certificates)."""

    def __init__(self, proc: "subprocess.Popen[str]", url: str) -> None:
        self._proc = proc
        self.url = url

    def set(self, serial: str, status: str) -> None:
        """``good`` or ``revoked <reason>``; returns once the responder answers so."""
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(f"ocsp {serial} {status}\n")
        self._proc.stdin.flush()
        answer = self._proc.stdout.readline().strip()
        assert answer == "ok", answer


@pytest.fixture
def pebble_ocsp(tmp_path: Path) -> Iterator[Tuple[Pebble, OcspResponder]]:
    for p, info in _start_pebble(tmp_path, "--ocsp"):
        yield p, OcspResponder(info["proc"], info["ocsp"]["url"])


@dataclass
class Bind:
    """BIND9 authoritative for ``zone`` with TSIG-signed updates; Pebble resolves through it."""

    port: int
    zone: str
    tsig_key: str
    tsig_secret: str

    def txt(self, name: str) -> List[str]:
        out = subprocess.run(
            ["dig", "+short", "+norecurse", "-p", str(self.port), "@127.0.0.1", "TXT", name],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return [line.strip().strip('"') for line in out.splitlines() if line.strip()]


@pytest.fixture
def pebble_bind(tmp_path: Path) -> Iterator[Tuple[Pebble, Bind]]:
    for p, info in _start_pebble(tmp_path, "--bind"):
        yield p, Bind(**info["bind"])


@pytest.fixture(autouse=True)
def _own_data_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Storage left to its default folder stays inside each test (never the user's own, and never
    a certificate from an earlier run's Pebble on a recycled port)."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("data-home")))


def pebble_config(p: Pebble, **overrides: Any) -> certmagic.Config:
    settings: Dict[str, Any] = dict(
        ca=p.directory_url,
        trusted_roots_pem=p.api_ca_pem,
        email="py-tests@certmagic-rs.test",
        agreed=True,
        alt_http_port=p.http_port,
        alt_tls_alpn_port=p.tls_port,
        listen_host="127.0.0.1",
        rate_limit=(0, 0.0),
    )
    settings.update(overrides)
    return certmagic.Config(**settings)


def https_get(port: int, name: str, cafile: str, path: str = "/", timeout: float = 10) -> Tuple[int, str, bytes]:
    """GET https://name:port/path on 127.0.0.1, verifying the chain against ``cafile``; returns
    (status, headers, body) and the peer certificate's DER as the last element's prefix."""
    ctx = ssl.create_default_context(cafile=cafile)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
        with ctx.wrap_socket(raw, server_hostname=name) as tls:
            tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while True:
                chunk = tls.recv(65536)
                if not chunk:
                    break
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    return status, head.decode("latin-1"), body


def http_get(port: int, host: str, path: str = "/") -> Tuple[int, str]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head = data.partition(b"\r\n\r\n")[0].decode("latin-1")
    return int(head.split(" ")[1]), head


class TLSTestServer:
    """A threaded TLS server answering "hello" with a given SSLContext (for ssl_context())."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.errors: List[BaseException] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        try:
            with self.context.wrap_socket(conn, server_side=True) as tls:
                tls.recv(4096)
                tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
        except (OSError, ssl.SSLError) as e:
            self.errors.append(e)

    def close(self) -> None:
        self.sock.close()


class DictStorage:
    """A storage backed by a dict (the contract of certmagic storage objects)."""

    def __init__(self, fail_on: Optional[Callable[[str], bool]] = None) -> None:
        self.data: Dict[str, bytes] = {}
        self.locks: set[str] = set()
        self.cond = threading.Condition()
        self.fail_on = fail_on

    def store(self, key: str, value: bytes) -> None:
        if self.fail_on is not None and self.fail_on(key):
            raise RuntimeError("disk full")
        self.data[key] = bytes(value)

    def load(self, key: str) -> bytes:
        return self.data[key]  # KeyError means "not found"

    def delete(self, key: str) -> None:
        for k in [k for k in self.data if k == key or k.startswith(key + "/")]:
            del self.data[k]

    def exists(self, key: str) -> bool:
        return any(k == key or k.startswith(key + "/") for k in self.data)

    def list(self, prefix: str, recursive: bool) -> List[str]:
        out = set()
        for k in self.data:
            if k.startswith(prefix + "/"):
                rest = k[len(prefix) + 1 :]
                out.add(prefix + "/" + (rest if recursive else rest.split("/")[0]))
        if not out:
            raise KeyError(prefix)
        return sorted(out)

    def stat(self, key: str) -> Dict[str, Any]:
        if key in self.data:
            return {"modified": 0.0, "size": len(self.data[key]), "is_terminal": True}
        if self.exists(key):
            return {"modified": 0.0, "size": 0, "is_terminal": False}
        raise KeyError(key)

    def lock(self, name: str) -> None:
        with self.cond:
            while name in self.locks:
                self.cond.wait()
            self.locks.add(name)

    def unlock(self, name: str) -> None:
        with self.cond:
            self.locks.discard(name)
            self.cond.notify_all()


class AsyncDictStorage:
    """The same contract with ``async def`` methods."""

    def __init__(self) -> None:
        self.inner = DictStorage()
        self.calls = 0

    async def store(self, key: str, value: bytes) -> None:
        self.calls += 1
        self.inner.store(key, value)

    async def load(self, key: str) -> bytes:
        self.calls += 1
        return self.inner.load(key)

    async def delete(self, key: str) -> None:
        self.inner.delete(key)

    async def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    async def list(self, prefix: str, recursive: bool) -> List[str]:
        return self.inner.list(prefix, recursive)

    async def stat(self, key: str) -> Dict[str, Any]:
        return self.inner.stat(key)

    async def lock(self, name: str) -> None:
        while name in self.inner.locks:  # wait without blocking the event loop
            await asyncio.sleep(0.01)
        self.inner.locks.add(name)

    async def unlock(self, name: str) -> None:
        self.inner.unlock(name)
