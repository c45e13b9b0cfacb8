"""Issuers from Python: the local CA serves ``localhost`` (verified by ``curl --cacert`` with the
exported root), and a CA that is down is followed by the next one, events saying which."""

from __future__ import annotations

import asyncio
import socket
import subprocess
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

import certmagic
from conftest import DictStorage, Pebble, https_get, pebble_config


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_the_local_ca_serves_localhost_to_curl(tmp_path: Path) -> None:
    root_file = tmp_path / "root.pem"
    port = _free_port()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\nfrom local")
        await writer.drain()
        writer.close()

    async def main() -> str:
        config = certmagic.Config(issuers=["local"], storage=str(tmp_path / "storage"))
        async with certmagic.Manager(config) as manager:
            assert manager.issuer_keys == ["local"]
            root_file.write_text(await manager.local_root_pem())
            server = await certmagic.serve_tls(manager, handler, "127.0.0.1", port)
            try:
                await manager.manage(["localhost"])
                curl = await asyncio.to_thread(
                    subprocess.run,
                    ["curl", "--silent", "--show-error", "--fail", "--cacert", str(root_file),
                     "--resolve", f"localhost:{port}:127.0.0.1", f"https://localhost:{port}/"],
                    capture_output=True,
                    text=True,
                    timeout=30,
                )
                assert curl.returncode == 0, curl.stderr
                status, _, body = await asyncio.to_thread(https_get, port, "localhost", str(root_file))
                assert (status, body) == (200, b"from local")
                return curl.stdout
            finally:
                server.close()

    assert asyncio.run(main()) == "from local"
    assert (tmp_path / "storage/pki/authorities/local/root.crt").read_text() == root_file.read_text()
    assert (tmp_path / "storage/certificates/local/localhost/localhost.crt").exists()


def test_a_ca_that_is_down_is_followed_by_the_next(pebble: Pebble) -> None:
    events: List[Tuple[str, Dict[str, Any]]] = []
    down = f"https://127.0.0.1:{_free_port()}/dir"
    config = pebble_config(
        pebble,
        storage=DictStorage(),
        issuers=[{"type": "acme", "ca": down}, "acme"],
        on_event=lambda name, data: events.append((name, data)),
    )
    with certmagic.Manager(config) as manager:
        first, second = manager.issuer_keys
        cert = manager.obtain_sync("py-fallback.example.test")
        assert cert.names == ["py-fallback.example.test"]
    obtained = next(data for name, data in events if name == "cert_obtained")
    assert obtained["issuer"] == second
    assert [f["issuer"] for f in obtained["failed_issuers"]] == [first]


def test_bad_issuers_are_refused_naming_the_keyword() -> None:
    cases: List[Tuple[List[Any], str]] = [
        (["zerossl-ish"], "is not an issuer"),
        ([{"type": "local", "lifetime_secs": 1}], "issuer 1 (local)"),
        ([{"type": "acme", "ca": "http://insecure.test/dir"}], "issuer 1 (acme)"),
    ]
    for issuers, fragment in cases:
        with pytest.raises(certmagic.ConfigError) as e:
            certmagic.Config(issuers=issuers)
        assert e.value.field == "issuers" and fragment in str(e.value), str(e.value)
    with pytest.raises(TypeError, match="issuers"):
        certmagic.Config(issuers=[42])  # type: ignore[list-item]
    with pytest.raises(certmagic.ConfigError) as e:
        certmagic.Config(issuer_policy="last")
    assert e.value.field == "issuer_policy"
    with certmagic.Manager(certmagic.Config(storage=DictStorage())) as manager:
        with pytest.raises(certmagic.NotFoundError):
            manager.local_root_pem_sync()
