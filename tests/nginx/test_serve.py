"""What nginx serves without ordering: names the library or Caddy already stored; reloads
under load; and what `nginx -t` says about bad settings."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

import certmagic
from conftest import Nginx, OcspResponder, Pebble, acme_settings, fixtures, stop_process, http_server, tls_get, tls_server, wait_served


def stored_leaf(storage: Path, name: str) -> bytes:
    import ssl

    found = list((storage / "certificates").glob(f"*/{name}/{name}.crt"))
    assert len(found) == 1, found
    pem = found[0].read_text()
    first = pem[: pem.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")]
    return ssl.PEM_cert_to_DER_cert(first)


def test_names_stored_by_the_library_and_by_caddy_are_served_without_an_order(
    pebble: Pebble, tmp_path: Path, nginxes: List[Nginx]
) -> None:
    storage = tmp_path / "storage"
    ours, theirs = "lib.nginx.test", "caddy.nginx.test"

    # 1. This library (through Python) obtains one name into the folder.
    config = fixtures.pebble_config(pebble, storage=str(storage))
    with certmagic.Manager(config) as manager:
        manager.obtain_sync(ours)

    # 2. Caddy (Go CertMagic) obtains the other, Ed25519, into the same folder.
    scratch = tmp_path / "caddy"
    scratch.mkdir()
    caddy_config = {
        "admin": {"disabled": True},
        "storage": {"module": "file_system", "root": str(storage)},
        "apps": {
            "http": {"http_port": pebble.http_port, "https_port": pebble.tls_port, "servers": {}},
            "tls": {"certificates": {"automate": [theirs]}, "automation": {"policies": [{
                "subjects": [theirs],
                "key_type": "ed25519",
                "issuers": [{
                    "module": "acme",
                    "ca": pebble.directory_url,
                    "email": "nginx-tests@certmagic-rs.test",
                    "trusted_roots_pem_files": [pebble.api_ca_file],
                    "challenges": {
                        "bind_host": "127.0.0.1",
                        "http": {"alternate_port": pebble.http_port},
                        "tls-alpn": {"alternate_port": pebble.tls_port},
                    },
                }],
            }]}},
        },
    }
    (scratch / "caddy.json").write_text(json.dumps(caddy_config))
    env = dict(os.environ, XDG_DATA_HOME=str(scratch / "data"), XDG_CONFIG_HOME=str(scratch / "config"),
               HOME=str(scratch))
    with open(scratch / "caddy.log", "wb") as log:
        caddy = subprocess.Popen(["caddy", "run", "--config", str(scratch / "caddy.json")], env=env,
                                 stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not list(storage.glob(f"certificates/*/{theirs}/{theirs}.key")):
            assert caddy.poll() is None and time.monotonic() < deadline, (scratch / "caddy.log").read_text()
            time.sleep(0.2)
        time.sleep(0.5)  # Caddy writes the .json after the .key
    finally:
        caddy.terminate()
        caddy.wait(timeout=30)
    assert pebble.orders() == 2

    # 3. nginx serves both from storage: the very certificates stored, no order.
    http = acme_settings(pebble, storage) + http_server(pebble.http_port)
    http += tls_server(pebble.tls_port, [ours]) + tls_server(pebble.tls_port, [theirs])
    nginx = Nginx(tmp_path / "nginx", http, workers=2).start()
    nginxes.append(nginx)
    for name in [ours, theirs]:
        status, body, leaf = tls_get(pebble.tls_port, name, pebble.root_file)
        assert (status, body) == (200, f"{name}\n".encode())
        assert leaf == stored_leaf(storage, name)
    assert pebble.orders() == 2, nginx.log()


def test_reload_under_load_fails_no_request(pebble: Pebble, tmp_path: Path, nginxes: List[Nginx]) -> None:
    names = ["reload1.nginx.test", "reload2.nginx.test"]
    http = acme_settings(pebble, tmp_path / "storage") + http_server(pebble.http_port)
    http += tls_server(pebble.tls_port, names)
    nginx = Nginx(tmp_path / "nginx", http, workers=2).start()
    nginxes.append(nginx)
    wait_served(pebble.tls_port, names, pebble.root_file)

    results: Dict[str, int] = {"ok": 0}
    failures: List[str] = []
    stop = threading.Event()

    def load() -> None:
        i = 0
        while not stop.is_set() and i < 2000:
            name = names[i % 2]
            try:
                status, body, _ = tls_get(pebble.tls_port, name, pebble.root_file)
                assert (status, body) == (200, f"{name}\n".encode()), (status, body)
                results["ok"] += 1
            except Exception as e:  # every failure is counted and shown
                failures.append(repr(e))
            i += 1

    client = threading.Thread(target=load)
    client.start()
    generations = 0
    for _ in range(3):
        time.sleep(0.7)
        before = nginx.log().count("start worker process")
        nginx.reload()
        deadline = time.monotonic() + 20
        while nginx.log().count("start worker process") < before + 2:
            assert time.monotonic() < deadline, nginx.log()
            time.sleep(0.05)
        generations += 1
    time.sleep(0.7)
    stop.set()
    client.join()
    assert generations == 3
    assert failures == [], failures[:5]
    assert results["ok"] > 50, results
    assert pebble.orders() == 2, nginx.log()


@pytest.mark.parametrize(
    "directives, message",
    [
        ("certmagic_key_type p521;", 'invalid value "p521"'),
        ("certmagic_challenges http-01 smoke-signals;", 'unknown challenge "smoke-signals"'),
        ("certmagic_ca not-a-url;", '"certmagic_ca" refused'),
        ("certmagic_trusted_roots /nonexistent/roots.pem;", '"certmagic_trusted_roots": cannot open'),
        ("certmagic_dns_provider nosuchprovider;", '"certmagic_dns_provider"'),
        ("certmagic_on_demand;", "invalid number of arguments"),
        ("certmagic_on_demand rate=5/1m;", "needs ask=<url> or allow=<names>"),
        ("certmagic_on_demand ask=ftp://x;", 'invalid parameter "ask=ftp://x"'),
        ("certmagic_storage redis://;", '"certmagic_storage" refused'),
    ],
)
def test_bad_settings_fail_nginx_t_naming_the_directive(
    pebble: Pebble, tmp_path: Path, directives: str, message: str
) -> None:
    # server-level settings override the http level's
    http = acme_settings(pebble, tmp_path / "storage")
    http += tls_server(pebble.tls_port, ["bad.nginx.test"], extra=f" {directives}\n")
    rc, out = Nginx(tmp_path / "nginx", http).test()
    assert rc != 0, out
    assert message in out, out
    assert "nginx.conf:" in out, out  # where


def test_wildcard_without_dns01_and_a_plain_server_without_certificates_are_refused(
    pebble: Pebble, tmp_path: Path
) -> None:
    http = acme_settings(pebble, tmp_path / "storage") + tls_server(pebble.tls_port, ["*.w.nginx.test"])
    rc, out = Nginx(tmp_path / "a", http).test()
    assert rc != 0 and 'the wildcard server name "*.w.nginx.test"' in out and "needs DNS-01" in out, out

    off = tls_server(pebble.tls_port, ["off.nginx.test"]).replace("certmagic on;", "certmagic off;")
    http = "certmagic on;\n" + acme_settings(pebble, tmp_path / "storage") + off
    rc, out = Nginx(tmp_path / "b", http).test()
    assert rc != 0 and 'no "ssl_certificate" is defined' in out, out


def test_ocsp_staple_passed_on(pebble_ocsp: Tuple[Pebble, OcspResponder], tmp_path: Path, nginxes: List[Nginx]) -> None:
    pebble, responder = pebble_ocsp
    storage = tmp_path / "storage"
    name = "ocsp.nginx.test"
    # the library obtains the certificate and a good OCSP response, both kept in storage
    config = fixtures.pebble_config(pebble, storage=str(storage), ocsp_check_interval=0.2)
    with certmagic.Manager(config) as manager:
        manager.manage_sync([name])
        cert = manager.get_certificate(name)
        assert cert is not None
        responder.set(cert.serial, "good")
        deadline = time.monotonic() + 30
        while (c := manager.get_certificate(name)) is None or c.ocsp_status != "good":
            assert time.monotonic() < deadline, "no good staple"
            time.sleep(0.05)

    http = acme_settings(pebble, storage) + tls_server(pebble.tls_port, [name])
    nginx = Nginx(tmp_path / "nginx", http, workers=1).start()
    nginxes.append(nginx)
    out = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{pebble.tls_port}", "-servername", name, "-status",
         "-CAfile", pebble.root_file, "-verify_return_error"],
        input="", capture_output=True, text=True, timeout=30,
    ).stdout
    assert "OCSP Response Status: successful" in out, out
    assert "Cert Status: good" in out, out
    assert "Verify return code: 0 (ok)" in out, out
    # a client that does not ask gets none
    out = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{pebble.tls_port}", "-servername", name],
        input="", capture_output=True, text=True, timeout=30,
    ).stdout
    assert "OCSP response" not in out, out


def test_binary_upgrade_keeps_serving(pebble: Pebble, tmp_path: Path, nginxes: List[Nginx]) -> None:
    """nginx's binary upgrade (USR2: a new master on the same sockets, then QUIT to the old one):
    every request during it succeeds, served by the new workers afterwards, no new order."""
    name = "upgrade.nginx.test"
    http = acme_settings(pebble, tmp_path / "storage") + http_server(pebble.http_port)
    http += tls_server(pebble.tls_port, [name])
    # a daemon: nginx upgrades only a master that is not a child of another process
    nginx = Nginx(tmp_path / "nginx", http, workers=2, daemon=True).start()
    nginxes.append(nginx)
    wait_served(pebble.tls_port, [name], pebble.root_file)
    old_master = nginx.master

    failures: List[str] = []
    done = threading.Event()

    def load() -> None:
        while not done.is_set():
            try:
                assert tls_get(pebble.tls_port, name, pebble.root_file)[:2] == (200, f"{name}\n".encode())
            except Exception as e:
                failures.append(repr(e))

    client = threading.Thread(target=load)
    client.start()
    try:
        time.sleep(0.5)
        os.kill(old_master, signal.SIGUSR2)
        deadline = time.monotonic() + 20
        while not (nginx.folder / "nginx.pid.oldbin").exists() or not nginx.pid_file.exists():
            assert time.monotonic() < deadline, nginx.log()
            time.sleep(0.05)
        nginx.master = int(nginx.pid_file.read_text())  # stopped at the end
        assert nginx.master != old_master
        while nginx.log().count("start worker process") < 4:
            assert time.monotonic() < deadline, nginx.log()
            time.sleep(0.05)
        time.sleep(0.5)
        assert stop_process(old_master), nginx.log()  # the old master and its workers leave
        time.sleep(0.5)
    finally:
        done.set()
        client.join()
    assert failures == [], failures[:5]
    assert tls_get(pebble.tls_port, name, pebble.root_file)[:2] == (200, f"{name}\n".encode())
    assert pebble.orders() == 1, nginx.log()


def test_own_ssl_certificate_served_while_the_library_has_none(
    pebble: Pebble, tmp_path: Path, nginxes: List[Nginx]
) -> None:
    """A server keeping its `ssl_certificate` files: they are served until the library has a
    certificate (here never: the CA is down), then the library's."""
    name = "own.nginx.test"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", str(tmp_path / "own.key"), "-out", str(tmp_path / "own.crt"), "-days", "2",
         "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}"],
        check=True, capture_output=True,
    )
    http = acme_settings(pebble, tmp_path / "storage").replace(pebble.directory_url, "https://127.0.0.1:9/dir")
    http += tls_server(
        pebble.tls_port, [name],
        extra=f" ssl_certificate {tmp_path / 'own.crt'};\n ssl_certificate_key {tmp_path / 'own.key'};\n",
    )
    nginx = Nginx(tmp_path / "nginx", http, workers=1).start()
    nginxes.append(nginx)
    status, body, _ = tls_get(pebble.tls_port, name, str(tmp_path / "own.crt"))
    assert (status, body) == (200, f"{name}\n".encode())


def test_a_silent_client_is_closed_after_client_header_timeout(
    pebble: Pebble, tmp_path: Path, nginxes: List[Nginx]
) -> None:
    """The ClientHello peek keeps nginx's own limit for a client that says nothing."""
    http = acme_settings(pebble, tmp_path / "storage") + "client_header_timeout 1s;\n"
    http += tls_server(pebble.tls_port, ["silent.nginx.test"])
    nginx = Nginx(tmp_path / "nginx", http, workers=1).start()
    nginxes.append(nginx)
    with socket.create_connection(("127.0.0.1", pebble.tls_port), timeout=15) as s:
        started = time.monotonic()
        assert s.recv(1) == b""  # closed by nginx, not by our 15 s timeout
        assert time.monotonic() - started < 10
