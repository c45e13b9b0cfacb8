"""Obtaining certificates from a real ACME CA (Pebble, validation on) through the Python API, and
serving them: the standalone HTTP-01 solver, TLS-ALPN-01 answered by ``serve_tls``, the one-liner
over Hypercorn, ``ssl_context()`` under concurrent handshakes. Every served chain is verified
against Pebble's root by ``ssl.create_default_context(cafile=...)``."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Dict, List, MutableMapping, Tuple

import pytest

import certmagic
from conftest import AsyncDictStorage, DictStorage, Pebble, TLSTestServer, http_get, https_get, pebble_config


def test_http01_with_dict_storage_events_and_logs(pebble: Pebble, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="certmagic")
    events: List[Tuple[str, Dict[str, Any]]] = []
    storage = DictStorage()
    config = pebble_config(
        pebble,
        storage=storage,
        disable_tls_alpn_challenge=True,
        on_event=lambda name, data: events.append((name, data)),
    )
    name = "py-http.example.test"
    with certmagic.Manager(config) as manager:
        manager.manage_sync([name])
        cert = manager.get_certificate(name)
        assert cert is not None and cert.is_managed and cert.names == [name]

        # Served through ssl_context(), the chain verifies against Pebble's root.
        server = TLSTestServer(manager.ssl_context())
        try:
            status, _, body = https_get(server.port, name, pebble.root_file)
        finally:
            server.close()
        assert (status, body) == (200, b"hello")

    assert [e[0] for e in events] == ["cert_obtaining", "cached_managed_cert", "cert_obtained"]
    obtained = events[2][1]
    assert obtained["identifier"] == name and obtained["renewal"] is False
    assert obtained["certificate_path"].endswith(f"{name}/{name}.crt")
    assert obtained["certificate_path"] in storage.data
    assert any(k.endswith("/users/py-tests@certmagic-rs.test/py-tests.key") for k in storage.data)
    assert not any("challenge_tokens" in k for k in storage.data), "challenge cleaned up"
    assert not storage.locks, "locks released"
    deadline = time.time() + 5
    while not any("certificate obtained" in r.getMessage() for r in caplog.records) and time.time() < deadline:
        time.sleep(0.05)
    record = next(r for r in caplog.records if "certificate obtained" in r.getMessage())
    assert record.name == "certmagic" and record.levelno == logging.INFO
    assert name in record.getMessage()


def test_await_manage_keeps_the_loop_running_with_async_storage(pebble: Pebble) -> None:
    storage = AsyncDictStorage()
    name = "py-async.example.test"

    async def main() -> Tuple[int, float]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.ensure_future(ticker())
        loop = asyncio.get_running_loop()
        start = loop.time()
        async with certmagic.Manager(pebble_config(pebble, storage=storage, disable_tls_alpn_challenge=True)) as manager:
            await manager.manage([name])
            cert = await manager.obtain("py-async2.example.test")
            assert cert.names == ["py-async2.example.test"]
        elapsed = loop.time() - start
        task.cancel()
        return ticks, elapsed

    ticks, elapsed = asyncio.run(main())
    # A loop blocked by the work would tick at most once before and once after it (a bound on
    # how often it ticked would be a bound on the machine's load).
    assert ticks >= 3, f"the event loop ran ({ticks} ticks in {elapsed:.2f} s)"
    assert storage.calls > 0 and f"certificates/" in " ".join(storage.inner.data)


def test_tls_alpn01_through_the_client_hello_entry_point(pebble: Pebble) -> None:
    name = "py-alpn.example.test"

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\nfrom tls")
        await writer.drain()
        writer.close()

    async def main() -> Tuple[int, bytes]:
        config = pebble_config(pebble, disable_http_challenge=True, storage=DictStorage())
        async with certmagic.Manager(config) as manager:
            server = await certmagic.serve_tls(manager, handler, "127.0.0.1", pebble.tls_port)
            try:
                await manager.manage([name])
                status, _, body = await asyncio.to_thread(https_get, pebble.tls_port, name, pebble.root_file)
            finally:
                server.close()
        return status, body

    assert asyncio.run(main()) == (200, b"from tls")
    assert "validate w/ HTTP" not in Path(pebble.log_file).read_text(), "TLS-ALPN-01 only"


def test_a_raising_storage_is_the_cause(pebble: Pebble) -> None:
    storage = DictStorage(fail_on=lambda key: key.startswith("certificates/"))
    with certmagic.Manager(pebble_config(pebble, storage=storage)) as manager:
        with pytest.raises(certmagic.StorageError) as info:
            manager.manage_sync(["py-fail.example.test"])
    cause = info.value.__cause__
    assert isinstance(cause, RuntimeError) and str(cause) == "disk full"
    assert "disk full" in str(info.value)


def test_an_event_callback_refusing_aborts_with_its_exception_as_cause(pebble: Pebble) -> None:
    def refuse(name: str, data: Dict[str, Any]) -> None:
        if name == "cert_obtaining":
            raise PermissionError(f"not today: {data['identifier']}")

    with certmagic.Manager(pebble_config(pebble, storage=DictStorage(), on_event=refuse)) as manager:
        with pytest.raises(certmagic.AbortedError) as info:
            manager.manage_sync(["py-refused.example.test"])
    assert isinstance(info.value.__cause__, PermissionError)
    assert pebble.orders() == 0


def test_obtain_renew_revoke(pebble: Pebble) -> None:
    with certmagic.Manager(pebble_config(pebble, storage=DictStorage())) as manager:
        first = manager.obtain_sync("py-life.example.test")
        second = manager.renew_sync("py-life.example.test")
        assert first.serial != second.serial
        manager.revoke_sync("py-life.example.test", reason="superseded")
        assert manager.get_certificate("py-life.example.test") is None
        status = pebble.management(f"/cert-status-by-serial/{second.serial}")
        assert status["Status"] == "Revoked" and status["Reason"] == 4


def test_blocking_calls_release_the_gil(pebble: Pebble) -> None:
    counter = 0
    stop = threading.Event()

    def count() -> None:
        nonlocal counter
        while not stop.is_set():
            counter += 1
            time.sleep(0.001)

    t = threading.Thread(target=count)
    t.start()
    try:
        with certmagic.Manager(pebble_config(pebble, storage=DictStorage())) as manager:
            before = counter
            manager.manage_sync(["py-gil.example.test"])
            # A thread starved of the GIL would count at most once or twice.
            assert counter - before >= 5, "another Python thread ran while manage_sync waited"
    finally:
        stop.set()
        t.join()


def test_50_concurrent_handshakes_while_callbacks_need_the_gil(pebble: Pebble) -> None:
    storage = DictStorage()
    name = "py-load.example.test"
    with certmagic.Manager(pebble_config(pebble, storage=storage)) as manager:
        manager.manage_sync([name])
        server = TLSTestServer(manager.ssl_context())
        try:
            # A renewal runs Python storage callbacks on engine threads meanwhile.
            renewing = threading.Thread(target=manager.renew_sync, args=(name,))
            renewing.start()
            with ThreadPoolExecutor(max_workers=50) as pool:
                results = list(pool.map(lambda _: https_get(server.port, name, pebble.root_file, timeout=30), range(50)))
            renewing.join(timeout=60)
            assert not renewing.is_alive()
        finally:
            server.close()
    assert all(r[0] == 200 and r[2] == b"hello" for r in results)
    assert not server.errors


def test_the_one_liner_over_hypercorn(pebble: Pebble) -> None:
    name = "py-oneliner.example.test"

    async def app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] in ("http", "lifespan")
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = f"hello over {scope['scheme']}".encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def main() -> None:
        stop = asyncio.Event()
        config = pebble_config(pebble, storage=DictStorage(), disable_tls_alpn_challenge=True)
        manager = certmagic.Manager(config)
        serving = asyncio.ensure_future(
            certmagic.serve_https(
                [name],
                app,
                manager=manager,
                host="127.0.0.1",
                http_port=pebble.http_port,
                https_port=pebble.tls_port,
                shutdown_trigger=stop.wait,
            )
        )
        deadline = time.time() + 30
        while manager.get_certificate(name) is None:
            assert not serving.done(), serving.exception() if serving.done() else ""
            assert time.time() < deadline, "no certificate"
            await asyncio.sleep(0.05)
        status, _, body = await asyncio.to_thread(https_get, pebble.tls_port, name, pebble.root_file, "/x")
        assert (status, body) == (200, b"hello over https")
        status_plain, head = await asyncio.to_thread(http_get, pebble.http_port, name, "/x?y=1")
        assert status_plain == 308 and f"location: https://{name}:{pebble.tls_port}/x?y=1" in head.lower()
        stop.set()
        await asyncio.wait_for(serving, 10)
        await manager.aclose()

    asyncio.run(main())


def test_ca_problems_are_kept_whole(pebble: Pebble) -> None:
    # Account B may not revoke a certificate account A ordered: the CA's problem document
    # reaches Python whole.
    name = "py-problem.example.test"
    a, b = DictStorage(), DictStorage()
    with certmagic.Manager(pebble_config(pebble, storage=a)) as owner:
        owner.obtain_sync(name)
    b.data.update({k: v for k, v in a.data.items() if k.startswith("certificates/")})
    with certmagic.Manager(pebble_config(pebble, storage=b, email="other@certmagic-rs.test")) as stranger:
        with pytest.raises(certmagic.AcmeError) as info:
            stranger.revoke_sync(name)
    error = info.value
    assert error.problem_type == "urn:ietf:params:acme:error:unauthorized", error
    assert error.status == 403 and error.detail
    assert error.kind == "acme" and error.problem_type in str(error)
