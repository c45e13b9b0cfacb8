"""nginx with the module obtains, serves and shares certificates: HTTP-01, TLS-ALPN-01 and
DNS-01 (a wildcard through BIND9), each name ordered once by four workers."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import List, Tuple

from conftest import Bind, Nginx, Pebble, acme_settings, http_server, tls_get, tls_server, wait_served


def test_http01_four_workers_three_names(pebble: Pebble, tmp_path: Path, nginxes: List[Nginx]) -> None:
    names = ["a.nginx.test", "b.nginx.test", "c.nginx.test"]
    http = acme_settings(pebble, tmp_path / "storage", "http-01") + http_server(pebble.http_port)
    # one server per name, and one more TLS port than Pebble's: HTTP-01 only
    http += "".join(tls_server(pebble.tls_port, [n]) for n in names)
    nginx = Nginx(tmp_path / "nginx", http, workers=4).start()
    nginxes.append(nginx)
    wait_served(pebble.tls_port, names, pebble.root_file)
    time.sleep(2)  # every worker has loaded or waited by now: none may order again
    assert pebble.orders() == 3, nginx.log()
    log = nginx.log()
    assert log.count("answering an HTTP-01 validation") >= 3, log
    assert "TLS-ALPN-01 validation" not in log
    for n in names:
        found = list((tmp_path / "storage/certificates").glob(f"*/{n}/{n}.crt"))
        assert len(found) == 1, found
        # curl verifies each served chain against Pebble's root too
        out = subprocess.run(
            ["curl", "-sS", "--fail", "--cacert", pebble.root_file, "--resolve", f"{n}:{pebble.tls_port}:127.0.0.1",
             f"https://{n}:{pebble.tls_port}/"],
            capture_output=True, text=True, timeout=30,
        )
        assert (out.returncode, out.stdout) == (0, f"{n}\n"), out.stderr


def test_tls_alpn01_only(pebble: Pebble, tmp_path: Path, nginxes: List[Nginx]) -> None:
    names = ["alpn1.nginx.test", "alpn2.nginx.test"]
    http = acme_settings(pebble, tmp_path / "storage", "tls-alpn-01") + tls_server(pebble.tls_port, names)
    nginx = Nginx(tmp_path / "nginx", http, workers=2).start()
    nginxes.append(nginx)
    wait_served(pebble.tls_port, names, pebble.root_file)
    assert pebble.orders() == 2, nginx.log()
    assert nginx.log().count("answering a TLS-ALPN-01 validation") >= 2, nginx.log()


def test_dns01_wildcard_through_bind(
    pebble_bind: Tuple[Pebble, Bind], tmp_path: Path, nginxes: List[Nginx]
) -> None:
    pebble, bind = pebble_bind
    provider = json.dumps(
        {"provider": "rfc2136", "server": f"127.0.0.1:{bind.port}", "key_name": bind.tsig_key,
         "key_secret": bind.tsig_secret}
    )
    options = json.dumps({"resolvers": [f"127.0.0.1:{bind.port}"], "poll_interval_ms": 200,
                          "propagation_timeout_ms": 20000})
    http = acme_settings(pebble, tmp_path / "storage")
    http += f"certmagic_dns_provider '{provider}' '{options}';\n"
    http += tls_server(pebble.tls_port, ["*.ngx.bind.test"])
    nginx = Nginx(tmp_path / "nginx", http, workers=2).start()
    nginxes.append(nginx)
    wait_served(pebble.tls_port, ["one.ngx.bind.test", "two.ngx.bind.test"], pebble.root_file)
    assert pebble.orders() == 1, nginx.log()
    assert bind.txt("_acme-challenge.ngx.bind.test") == []


def test_ip_address_server_name(pebble: Pebble, tmp_path: Path, nginxes: List[Nginx]) -> None:
    """An IP literal as server_name: clients send no SNI for it, the server's name is used."""
    http = acme_settings(pebble, tmp_path / "storage", "http-01") + http_server(pebble.http_port)
    http += tls_server(pebble.tls_port, ["127.0.0.1"]).replace('"$ssl_server_name\\n"', '"ip\\n"')
    nginx = Nginx(tmp_path / "nginx", http, workers=1).start()
    nginxes.append(nginx)
    deadline = time.monotonic() + 60
    while True:
        try:
            status, body, _ = tls_get(pebble.tls_port, "127.0.0.1", pebble.root_file)
            break
        except OSError as e:  # (ssl.SSLError is one) not obtained yet
            assert time.monotonic() < deadline, f"{e!r}\n{nginx.log()}"
            time.sleep(0.2)
    assert (status, body) == (200, b"ip\n")
    assert pebble.orders() == 1
