"""OCSP in Python against a real responder (``openssl ocsp`` signing with Pebble's intermediate,
named in Pebble's certificates): the engine fetches, checks and stores the response, exposes it
as ``Certificate.ocsp_staple``/``ocsp_status``, and replaces a certificate revoked for key
compromise. Python's ``ssl`` cannot staple on the server side, so the bytes are for servers on
other TLS stacks; the handshake side is proven by the Rust, C and Node tests."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple, TypeVar

import certmagic
from conftest import OcspResponder, Pebble, pebble_config

T = TypeVar("T")


def _wait(what: str, probe: Callable[[], Optional[T]], limit: float = 30.0) -> T:
    deadline = time.monotonic() + limit
    while True:
        got = probe()
        if got is not None:
            return got
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def test_a_good_response_is_kept_and_a_revoked_certificate_replaced(
    pebble_ocsp: Tuple[Pebble, OcspResponder], tmp_path: Path
) -> None:
    pebble, responder = pebble_ocsp
    events: List[Tuple[str, Dict[str, Any]]] = []
    storage = tmp_path / "storage"
    config = pebble_config(
        pebble,
        storage=str(storage),
        ocsp_check_interval=0.2,
        on_event=lambda name, data: events.append((name, data)),
    )
    name = "py-ocsp.example.test"
    with certmagic.Manager(config) as manager:
        manager.manage_sync([name])
        first = manager.get_certificate(name)
        assert first is not None
        # The responder does not know the new certificate yet.
        assert first.ocsp_status == "unknown"
        assert first.ocsp_staple is None

        responder.set(first.serial, "good")

        def good() -> Optional[certmagic.Certificate]:
            c = manager.get_certificate(name)
            return c if c is not None and c.ocsp_status == "good" else None

        stapled = _wait("a good staple", good)
        staple = stapled.ocsp_staple
        assert staple
        # OpenSSL accepts it, signed for Pebble's chain.
        (tmp_path / "resp.der").write_bytes(staple)
        (tmp_path / "chain.pem").write_text(stapled.chain_pem)
        out = subprocess.run(
            ["openssl", "ocsp", "-respin", str(tmp_path / "resp.der"), "-CAfile", pebble.root_file,
             "-verify_other", str(tmp_path / "chain.pem"), "-resp_text"],
            capture_output=True, text=True,
        )
        assert "Response verify OK" in out.stderr + out.stdout, out.stderr + out.stdout
        assert "Cert Status: good" in out.stdout, out.stdout
        # Stored where Go CertMagic keeps it.
        site = storage / "certificates" / config.issuer_key.replace(":", "-") / name
        crt = (site / f"{name}.crt").read_bytes()
        assert (storage / "ocsp" / f"{name}-{_fnv32a(crt):x}").read_bytes() == staple

        responder.set(first.serial, "revoked keyCompromise")

        def replaced() -> Optional[certmagic.Certificate]:
            c = manager.get_certificate(name)
            return c if c is not None and c.serial != first.serial else None

        new = _wait("a replacement certificate", replaced, limit=60.0)
        assert new.key_pem != first.key_pem
        assert (site / f"{name}.key.compromised").exists()
        revoked = _wait("the event", lambda: [d for n, d in events if n == "cert_ocsp_revoked"] or None)
        assert revoked[0]["subjects"] == [name]
        assert revoked[0]["reason"] == 1
