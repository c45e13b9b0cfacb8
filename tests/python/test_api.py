"""The Python API without a CA: configuration checks, errors, certificates added by PEM, the
ClientHello parser, the middleware."""

from __future__ import annotations

import asyncio
import re
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any, Dict, List, MutableMapping, Tuple

import pytest

import certmagic
from conftest import DictStorage


def self_signed(tmp_path: Path, name: str) -> Tuple[str, str]:
    crt, key = tmp_path / "c.pem", tmp_path / "k.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "30",
         "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}", "-keyout", str(key), "-out", str(crt)],
        check=True,
        capture_output=True,
    )
    return crt.read_text(), key.read_text()


def offline_manager(tmp_path: Path, **kw: Any) -> certmagic.Manager:
    return certmagic.Manager(certmagic.Config(ca="https://127.0.0.1:1/dir", storage=str(tmp_path / "storage"), **kw))


def test_version_and_exports() -> None:
    assert certmagic.__version__.count(".") == 2
    assert certmagic.LETS_ENCRYPT_PRODUCTION.startswith("https://acme-v02.api.letsencrypt.org")
    for name in certmagic.__all__:
        assert hasattr(certmagic, name), name


def test_error_tree() -> None:
    for cls in (certmagic.ConfigError, certmagic.StorageError, certmagic.AcmeError, certmagic.TimeoutError):
        assert issubclass(cls, certmagic.Error)
    assert issubclass(certmagic.ConfigError, ValueError)
    assert issubclass(certmagic.ChallengeError, certmagic.AcmeError)
    assert issubclass(certmagic.TimeoutError, TimeoutError)
    assert issubclass(certmagic.NotFoundError, KeyError)


@pytest.mark.parametrize("kwargs, field", [({"email": 5}, "email"), ({"agreed": "yes"}, "agreed"), ({"alt_http_port": "80"}, "alt_http_port")])
def test_wrong_types_raise_type_error_naming_the_field(kwargs: Dict[str, Any], field: str) -> None:
    with pytest.raises(TypeError) as info:
        certmagic.Config(**kwargs)
    text = str(info.value) + " ".join(getattr(info.value, "__notes__", []))
    assert field in text


class _NoDns:
    """A DNS provider object that is never called (the config is refused first)."""

    def append_records(self, zone: str, records: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
        return records

    def delete_records(self, zone: str, records: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
        return records


# A refused value for every keyword that has a value rule, and the keyword the error must name
# (the core checks; the binding only names the keyword as the caller wrote it).
_REFUSALS: List[Tuple[Dict[str, Any], str]] = [
    ({"ca": "http://insecure.example/dir"}, "ca"),
    ({"email": "not-an-email"}, "email"),
    ({"trusted_roots_pem": "garbage"}, "trusted_roots_pem"),
    ({"key_type": "dsa"}, "key_type"),
    ({"renewal_window_ratio": 1.5}, "renewal_window_ratio"),
    ({"renew_check_interval": 0.01}, "renew_check_interval"),
    ({"must_staple": True, "disable_ocsp_stapling": True}, "must_staple"),
    ({"ocsp_responder_overrides": {"ftp://ocsp.example": ""}}, "ocsp_responder_overrides"),
    ({"ocsp_responder_overrides": {"http://ocsp.example": "not a url"}}, "ocsp_responder_overrides"),
    ({"ocsp_check_interval": 0.01}, "ocsp_check_interval"),
    ({"disable_http_challenge": True, "disable_tls_alpn_challenge": True}, "disable_tls_alpn_challenge"),
    ({"alt_http_port": 70000}, "alt_http_port"),
    ({"alt_tls_alpn_port": 0}, "alt_tls_alpn_port"),
    ({"alt_http_port": 5002, "alt_tls_alpn_port": 5002}, "alt_tls_alpn_port"),
    ({"listen_host": "a b"}, "listen_host"),
    ({"challenge_preference": ["dns-01"]}, "challenge_preference"),
    ({"challenge_preference": ["smtp-01"]}, "challenge_preference"),
    ({"eab_key_id": "kid"}, "eab_hmac_key"),
    ({"eab_hmac_key": "a2V5"}, "eab_key_id"),
    ({"eab_key_id": "kid", "eab_hmac_key": "!!!"}, "eab_hmac_key"),
    ({"preferred_chain_root_cns": [" "]}, "preferred_chain_root_cns"),
    ({"preferred_chain_issuer_cns": [""]}, "preferred_chain_issuer_cns"),
    ({"profile": "two words"}, "profile"),
    ({"order_timeout": 0.5}, "order_timeout"),
    ({"rate_limit": (1, 0)}, "rate_limit"),
    ({"retry_intervals": [1e9]}, "retry_intervals"),
    ({"retry_max_total": 1e9}, "retry_max_total"),
    ({"on_demand_ask": "ftp://x"}, "on_demand_ask"),
    ({"on_demand_obtain_timeout": 1}, "on_demand_obtain_timeout"),
    ({"on_demand_rate_limit": (1, 1)}, "on_demand_rate_limit"),
    ({"on_demand_allow": ["a.example.test"], "on_demand_rate_limit": (1, 0)}, "on_demand_rate_limit"),
    ({"cache_capacity": 0}, "cache_capacity"),
    ({"issuers": [{"type": "local", "lifetime_secs": 1}]}, "issuers"),
    ({"issuer_policy": "last"}, "issuer_policy"),
    ({"dns_provider": "nope"}, "dns_provider"),
    ({"dns_ttl": 60}, "dns_ttl"),
    ({"dns_follow_cname": False}, "dns_follow_cname"),
    ({"dns_provider": _NoDns(), "dns_ttl": 2**31 + 10}, "dns_ttl"),
    ({"dns_provider": _NoDns(), "dns_propagation_delay": 1e6}, "dns_propagation_delay"),
    ({"dns_provider": _NoDns(), "dns_propagation_timeout": 1e6}, "dns_propagation_timeout"),
    ({"dns_provider": _NoDns(), "dns_poll_interval": 0}, "dns_poll_interval"),
    ({"dns_provider": _NoDns(), "dns_resolvers": ["ns1.example"]}, "dns_resolvers"),
    ({"dns_provider": _NoDns(), "dns_override_domain": " "}, "dns_override_domain"),
    ({"callback_timeout_storage": 1e6}, "callback_timeout_storage"),
    ({"callback_timeout_lock": -1}, "callback_timeout_lock"),
    ({"callback_timeout_dns": 1e6}, "callback_timeout_dns"),
    ({"callback_timeout_decision": float("nan")}, "callback_timeout_decision"),
    ({"callback_timeout_events": 1e6}, "callback_timeout_events"),
]
# Keywords whose values have no rule beyond their type (a TypeError names them).
_TYPE_ONLY = {
    "agreed",
    "disable_distributed_solvers",
    "preferred_chain_smallest",
    "must_staple",
    "reuse_private_keys",
    "storage",
    "on_event",
    "on_demand_decision",
    "on_demand_allow",
}


@pytest.mark.parametrize("kwargs, field", _REFUSALS)
def test_bad_values_raise_config_error_naming_the_keyword(kwargs: Dict[str, Any], field: str) -> None:
    with pytest.raises(certmagic.ConfigError) as info:
        certmagic.Config(**kwargs)
    assert isinstance(info.value, ValueError)
    assert info.value.field == field
    assert f"`{field}`" in str(info.value), info.value


def test_every_keyword_is_covered_by_a_refusal_or_has_no_value_rule() -> None:
    signature = certmagic.Config.__text_signature__ or ""
    keywords = set(re.findall(r"(\w+)=None|(\w+)=False", signature))
    names = {a or b for a, b in keywords}
    assert len(names) > 40, signature
    refused = {field for _, field in _REFUSALS} | {k for kwargs, _ in _REFUSALS for k in kwargs}
    assert names - refused - _TYPE_ONLY == set()


# Every numeric option, with what else it needs for its own check to run.
_NUMERIC_OPTIONS: List[Tuple[str, Any, Dict[str, Any]]] = [
    ("renewal_window_ratio", lambda v: v, {}),
    ("renew_check_interval", lambda v: v, {}),
    ("ocsp_check_interval", lambda v: v, {}),
    ("alt_http_port", lambda v: v, {}),
    ("alt_tls_alpn_port", lambda v: v, {}),
    ("order_timeout", lambda v: v, {}),
    ("rate_limit", lambda v: (v, 10), {}),
    ("rate_limit", lambda v: (10, v), {}),
    ("retry_intervals", lambda v: [v], {}),
    ("retry_max_total", lambda v: v, {}),
    ("on_demand_rate_limit", lambda v: (v, 10), {"on_demand_allow": ["a.example.test"]}),
    ("on_demand_rate_limit", lambda v: (10, v), {"on_demand_allow": ["a.example.test"]}),
    ("on_demand_obtain_timeout", lambda v: v, {"on_demand_allow": ["a.example.test"]}),
    ("cache_capacity", lambda v: v, {}),
    ("dns_ttl", lambda v: v, {"dns_provider": _NoDns()}),
    ("dns_propagation_delay", lambda v: v, {"dns_provider": _NoDns()}),
    ("dns_propagation_timeout", lambda v: v, {"dns_provider": _NoDns()}),
    ("dns_poll_interval", lambda v: v, {"dns_provider": _NoDns()}),
]
_BAD_NUMBERS: List[Any] = [float("nan"), float("inf"), float("-inf"), -1, 1e300, 2**64, 10**400, "a string"]


@pytest.mark.parametrize("option, shape, extra", _NUMERIC_OPTIONS)
@pytest.mark.parametrize("bad", _BAD_NUMBERS, ids=repr)
def test_every_numeric_option_refuses_bad_numbers(option: str, shape: Any, extra: Dict[str, Any], bad: Any) -> None:
    if option == "dns_propagation_timeout" and bad == -1:
        pytest.skip("a negative propagation timeout turns the checks off")
    # ConfigError or TypeError, never pyo3's PanicException (a BaseException) or an abort.
    with pytest.raises((certmagic.ConfigError, TypeError)) as info:
        certmagic.Config(storage="/nonexistent", **{option: shape(bad)}, **extra)
    if isinstance(info.value, certmagic.ConfigError):
        assert info.value.field == option, info.value
    else:
        assert isinstance(bad, str), info.value


def test_a_retry_total_alone_keeps_the_default_intervals(tmp_path: Path) -> None:
    assert certmagic.Config(retry_max_total=3600.0).retry_intervals[0] == 60.0
    assert certmagic.Config(retry_max_total=3600.0).retry_max_total == 3600.0
    assert certmagic.Config(retry_intervals=[1.0, 2.0]).retry_intervals == [1.0, 2.0]
    assert certmagic.Config(retry_intervals=[1.0]).retry_max_total == 30 * 24 * 3600.0


def test_storage_objects_are_checked() -> None:
    class NoLoad:
        def store(self, key: str, value: bytes) -> None: ...

    with pytest.raises(TypeError, match="storage.*`load`"):
        certmagic.Config(storage=NoLoad())
    with pytest.raises(TypeError, match="on_event"):
        certmagic.Config(on_event="not callable")  # type: ignore[arg-type]


def test_bad_names_pem_and_reasons(tmp_path: Path) -> None:
    with offline_manager(tmp_path) as m:
        with pytest.raises(certmagic.InvalidNameError, match="bad name.example.test"):
            m.manage_sync(["bad name.example.test"])
        with pytest.raises(certmagic.InvalidNameError, match="DNS-01"):
            m.manage_sync(["*.example.test"])
        with pytest.raises(TypeError):
            m.manage_sync("a.example.test")  # a str is not a list of names
        with pytest.raises(certmagic.CertificateError):
            m.add_certificate("not pem", "not pem")
        with pytest.raises(ValueError, match="reason"):
            m.revoke_sync("a.example.test", reason="bored")
        with pytest.raises(certmagic.NotFoundError):
            m.revoke_sync("a.example.test", reason="superseded")
        assert m.get_certificate("nothing.example.test") is None
    with pytest.raises(certmagic.ShutDownError):
        m.manage_sync(["after.example.test"])


def test_added_certificate_accessors(tmp_path: Path) -> None:
    chain, key = self_signed(tmp_path, "added.example.test")
    with offline_manager(tmp_path) as m:
        cert = m.add_certificate(chain, key.encode())
        assert not cert.is_managed
        assert cert.names == ["added.example.test"]
        assert cert.chain_pem.startswith("-----BEGIN CERTIFICATE-----")
        assert "PRIVATE KEY" in cert.key_pem
        assert len(cert.chain_der) == 1 and cert.chain_der[0][0] == 0x30
        assert cert.key_der[0] == 0x30
        assert cert.not_before.tzinfo is not None and cert.not_before < cert.not_after
        assert cert.ocsp_staple is None
        again = m.get_certificate("ADDED.example.test")
        assert again is not None and again == cert and hash(again) == hash(cert)
        assert len(cert.hash) == 32 and len(cert.serial) > 0
        # The certificate serves through ssl_context().
        ctx = m.ssl_context(default_server_name="added.example.test")
        assert isinstance(ctx, ssl.SSLContext)


def test_peek_client_hello() -> None:
    client = ssl.create_default_context()
    client.set_alpn_protocols(["acme-tls/1"])
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client.wrap_bio(incoming, outgoing, server_hostname="peek.example.test")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    hello = outgoing.read()
    assert certmagic.peek_client_hello(hello) == ("peek.example.test", [b"acme-tls/1"])
    assert certmagic.peek_client_hello(hello[:20]) is None
    with pytest.raises(certmagic.CorruptError):
        certmagic.peek_client_hello(b"GET / HTTP/1.1\r\n\r\n")


def test_asgi_middleware_redirects_and_passes_through(tmp_path: Path) -> None:
    with offline_manager(tmp_path) as m:
        calls: List[str] = []

        async def app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
            calls.append(scope["path"])
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        mw = certmagic.ACMEMiddleware(app, m, https_port=8443)
        sent: List[Dict[str, Any]] = []

        async def send(msg: MutableMapping[str, Any]) -> None:
            sent.append(dict(msg))

        async def receive() -> MutableMapping[str, Any]:
            return {"type": "http.request"}

        async def run(scope: Dict[str, Any]) -> None:
            sent.clear()
            await mw(scope, receive, send)

        base = {"type": "http", "method": "GET", "headers": [(b"host", b"a.example.test:8080")], "query_string": b"x=1"}
        asyncio.run(run({**base, "scheme": "http", "path": "/page"}))
        assert sent[0]["status"] == 308
        assert (b"location", b"https://a.example.test:8443/page?x=1") in sent[0]["headers"]
        asyncio.run(run({**base, "scheme": "http", "path": "/.well-known/acme-challenge/unknown"}))
        assert sent[0]["status"] == 308  # not an active challenge: redirected like any request
        asyncio.run(run({**base, "scheme": "https", "path": "/app"}))
        assert sent[0]["status"] == 204 and calls == ["/app"]


def test_wsgi_middleware(tmp_path: Path) -> None:
    with offline_manager(tmp_path) as m:
        def app(environ: Dict[str, Any], start_response: Any) -> List[bytes]:
            start_response("200 OK", [])
            return [b"app"]

        mw = certmagic.ACMEWSGIMiddleware(app, m)
        seen: List[str] = []

        def start(status: str, headers: List[Tuple[str, str]]) -> None:
            seen.append(status)
            seen.extend(v for k, v in headers if k == "Location")

        env = {"PATH_INFO": "/x", "HTTP_HOST": "w.example.test", "REQUEST_METHOD": "GET", "wsgi.url_scheme": "http", "QUERY_STRING": ""}
        mw(env, start)
        assert seen == ["308 Permanent Redirect", "https://w.example.test/x"]
        seen.clear()
        assert list(mw({**env, "wsgi.url_scheme": "https"}, start)) == [b"app"]


class _SlowLoads(DictStorage):
    """Every load takes a second."""

    def load(self, key: str) -> bytes:
        time.sleep(1.0)
        return super().load(key)


def test_a_storage_call_past_its_deadline_is_a_timeout() -> None:
    config = certmagic.Config(ca="https://127.0.0.1:1/dir", storage=_SlowLoads(), callback_timeout_storage=0.1)
    with certmagic.Manager(config) as m:
        with pytest.raises(certmagic.TimeoutError, match="callback deadline"):
            m.manage_sync(["slow.example.test"])
    with pytest.raises(certmagic.ConfigError) as info:
        certmagic.Config(callback_timeout_lock=-1)
    assert info.value.field == "callback_timeout_lock"


def test_storage_url_refused_naming_storage_without_its_password() -> None:
    for bad in ["redis://:pw-secret@127.0.0.1:1/0?compression=lz4", "mongodb://u:pw-secret@h/db"]:
        with pytest.raises(certmagic.ConfigError) as info:
            certmagic.Config(storage=bad)
        assert info.value.field == "storage"
        assert "pw-secret" not in str(info.value), info.value
    # A URL opens without connecting: nothing listens on port 1.
    certmagic.Config(storage="postgres://u:pw@127.0.0.1:1/db?data_table=fleet_data")
