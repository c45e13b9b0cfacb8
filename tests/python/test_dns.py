"""DNS-01 through the Python API against a real BIND9 that Pebble resolves through: a built-in
provider given as a dict (RFC 2136 with TSIG) for a wildcard, a provider written in Python
(``async def`` methods calling ``nsupdate``) whose ids come back on delete, and the errors."""

from __future__ import annotations

import asyncio
import subprocess
from typing import Any, Dict, List

import pytest

import certmagic
from conftest import Bind, Pebble, TLSTestServer, https_get, pebble_config


def dns_options(bind: Bind) -> Dict[str, Any]:
    return dict(dns_resolvers=[f"127.0.0.1:{bind.port}"], dns_poll_interval=0.2, dns_propagation_timeout=20.0)


def test_wildcard_through_builtin_rfc2136(pebble_bind: tuple[Pebble, Bind]) -> None:
    pebble, bind = pebble_bind
    provider = {
        "provider": "rfc2136",
        "server": f"127.0.0.1:{bind.port}",
        "key_name": bind.tsig_key,
        "key_secret": bind.tsig_secret,
    }
    config = pebble_config(pebble, dns_provider=provider, **dns_options(bind))
    with certmagic.Manager(config) as manager:
        cert = manager.obtain_sync("*.py.bind.test")
        assert cert.names == ["*.py.bind.test"]
        server = TLSTestServer(manager.ssl_context())
        try:
            for name in ["a.py.bind.test", "b.py.bind.test"]:
                status, _, body = https_get(server.port, name, pebble.root_file)
                assert (status, body) == (200, b"hello")
        finally:
            server.close()
        assert manager.get_certificate("a.b.py.bind.test") is None
    assert bind.txt("_acme-challenge.py.bind.test") == []


class NsupdateProvider:
    """A DNS provider written in Python: ``nsupdate`` with the zone's TSIG key."""

    def __init__(self, bind: Bind) -> None:
        self.bind = bind
        self.appended: List[Dict[str, Any]] = []
        self.deleted: List[Dict[str, Any]] = []

    async def _nsupdate(self, zone: str, change: str) -> None:
        script = f"server 127.0.0.1 {self.bind.port}\nzone {zone}\n{change}\nsend\n"
        proc = await asyncio.create_subprocess_exec(
            "nsupdate", "-y", f"hmac-sha256:{self.bind.tsig_key}:{self.bind.tsig_secret}",
            stdin=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        _, err = await proc.communicate(script.encode())
        if proc.returncode != 0:
            raise RuntimeError(f"nsupdate failed: {err.decode()}")

    async def append_records(self, zone: str, records: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
        created = []
        for r in records:
            await self._nsupdate(zone, f'update add {r["name"]}.{zone} {r["ttl"]} TXT "{r["value"]}"')
            created.append({**r, "id": f"py-{len(self.appended)}"})
            self.appended.append(r)
        return created

    async def delete_records(self, zone: str, records: List[Dict[str, Any]]) -> None:
        for r in records:
            await self._nsupdate(zone, f'update delete {r["name"]}.{zone} TXT "{r["value"]}"')
            self.deleted.append(r)


def test_provider_written_in_python(pebble_bind: tuple[Pebble, Bind]) -> None:
    pebble, bind = pebble_bind
    provider = NsupdateProvider(bind)
    config = pebble_config(pebble, dns_provider=provider, **dns_options(bind))
    with certmagic.Manager(config) as manager:
        cert = manager.obtain_sync("pyprov.bind.test")
        assert cert.names == ["pyprov.bind.test"]
    assert [r["name"] for r in provider.appended] == ["_acme-challenge.pyprov"]
    assert provider.appended[0]["type"] == "TXT" and len(provider.appended[0]["value"]) == 43
    assert [r.get("id") for r in provider.deleted] == ["py-0"], "the provider's id comes back"
    assert bind.txt("_acme-challenge.pyprov.bind.test") == []


def test_a_failing_provider_is_the_cause(pebble_bind: tuple[Pebble, Bind]) -> None:
    pebble, bind = pebble_bind

    class Broken:
        def append_records(self, zone: str, records: List[Dict[str, Any]]) -> None:
            raise PermissionError("zone is read-only")

        def delete_records(self, zone: str, records: List[Dict[str, Any]]) -> None:
            pass

    config = pebble_config(pebble, dns_provider=Broken(), **dns_options(bind))
    with certmagic.Manager(config) as manager:
        with pytest.raises(certmagic.Error) as info:
            manager.obtain_sync("broken.bind.test")
    assert "append_records" in str(info.value)
    cause = info.value.__cause__
    while cause is not None and not isinstance(cause, PermissionError):
        cause = cause.__cause__
    assert isinstance(cause, PermissionError)


def test_dns_config_errors_name_the_field() -> None:
    with pytest.raises(certmagic.ConfigError) as info:
        certmagic.Config(dns_provider="nope")
    assert "unknown DNS provider `nope`" in str(info.value)
    with pytest.raises(certmagic.ConfigError) as info:
        certmagic.Config(dns_resolvers=["127.0.0.1"])
    assert info.value.field == "dns_resolvers" and "no DNS provider" in str(info.value)
    with pytest.raises(certmagic.ConfigError) as info:
        certmagic.Config(dns_provider={"provider": "rfc2136", "server": "127.0.0.1"}, dns_resolvers=["ns1.example"])
    assert info.value.field == "dns_resolvers" and "`dns_resolvers`" in str(info.value)
    with pytest.raises(TypeError):
        certmagic.Config(dns_provider=42)
    with pytest.raises(certmagic.Error) as err:
        with certmagic.Manager(certmagic.Config()) as m:
            m.obtain_sync("*.example.com")
    assert "DNS-01" in str(err.value)
