"""On-demand TLS through the Python API against Pebble (validation on): ``serve_tls`` reads the
ClientHello first and awaits the certificate, so a never-seen allowed name gets one during its
first handshake while the event loop keeps serving; refused names never reach the CA; twenty
concurrent handshakes share one order; a raising decision refuses with its reason."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import List

import pytest

import certmagic
from conftest import Pebble, https_get, pebble_config


async def hello(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\non demand")
    await writer.drain()
    writer.close()


def test_first_handshake_obtains_and_refused_names_never_reach_the_ca(pebble: Pebble) -> None:
    asked: List[str] = []

    async def decide(name: str) -> bool:
        asked.append(name)
        await asyncio.sleep(0)  # a coroutine decision, awaited on the loop
        return name.endswith(".ok.test")

    events: List[str] = []
    config = pebble_config(
        pebble,
        on_demand_decision=decide,
        on_event=lambda name, data: events.append(f"{name}:{data.get('on_demand', False)}"),
    )

    async def main() -> None:
        async with certmagic.Manager(config) as manager:
            server = await certmagic.serve_tls(manager, hello, "127.0.0.1", 0, handshake_timeout=60)
            try:
                port = server.port
                # The loop stays responsive while the certificate is obtained.
                ticks = 0

                async def tick() -> None:
                    nonlocal ticks
                    while True:
                        await asyncio.sleep(0.01)
                        ticks += 1

                ticker = asyncio.create_task(tick())
                start = asyncio.get_running_loop().time()
                status, _, body = await asyncio.to_thread(https_get, port, "py-new.ok.test", pebble.root_file, "/", 60)
                elapsed = asyncio.get_running_loop().time() - start
                ticker.cancel()
                assert (status, body) == (200, b"on demand")
                # A loop blocked by the handshake would tick at most once before and once after.
                assert ticks >= 3, f"the event loop kept running ({ticks} ticks in {elapsed:.2f} s)"
                with pytest.raises((ssl.SSLError, OSError)):
                    await asyncio.to_thread(https_get, port, "py-evil.example.test", pebble.root_file)
                with pytest.raises(certmagic.Error) as info:
                    await manager.certificate_for_handshake("py-evil.example.test")
                assert "refused" in str(info.value)
            finally:
                server.close()

    asyncio.run(main())
    assert pebble.orders() == 1
    assert "py-evil" not in Path(pebble.log_file).read_text()
    assert "cert_obtained:True" in events and "tls_get_certificate:False" in events


def test_concurrent_handshakes_share_one_order_and_a_raising_decision_refuses(pebble: Pebble) -> None:
    def decide(name: str) -> bool:
        if name.startswith("broken."):
            raise RuntimeError("policy database down")
        return True

    config = pebble_config(pebble, on_demand_decision=decide)

    async def main() -> None:
        async with certmagic.Manager(config) as manager:
            certs = await asyncio.gather(
                *(manager.certificate_for_handshake("py-crowd.ok.test", [b"h2"]) for _ in range(20))
            )
            assert len({c.hash for c in certs}) == 1
            assert certs[0].names == ["py-crowd.ok.test"]
            with pytest.raises(certmagic.Error) as info:
                await manager.certificate_for_handshake("broken.ok.test")
            assert "policy database down" in str(info.value)

    asyncio.run(main())
    assert pebble.orders() == 1


def test_on_demand_settings_are_checked() -> None:
    with pytest.raises(certmagic.ConfigError) as info:
        certmagic.Config(on_demand_rate_limit=(5, 60.0))
    assert info.value.field == "on_demand_rate_limit"
    with pytest.raises(certmagic.ConfigError):
        certmagic.Config(cache_capacity=0)
    with pytest.raises(certmagic.ConfigError) as info:
        certmagic.Config(on_demand_ask="ftp://nope")
    assert "on_demand_ask" in str(info.value)
    certmagic.Config(on_demand_allow=["a.example.com"], cache_capacity=10, on_demand_obtain_timeout=30.0)
