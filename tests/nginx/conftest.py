"""Real nginx (Debian's) with the module built by `make nginx-module`, started per test on
127.0.0.1 against the Pebble of tests/python's fixtures."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import ssl
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Iterator, List, Optional, Protocol, Tuple

import pytest

WORKSPACE = Path(__file__).resolve().parents[2]
MODULE = WORKSPACE / "target/nginx-build/objs/ngx_http_certmagic_module.so"


def _python_fixtures() -> ModuleType:
    spec = importlib.util.spec_from_file_location("python_fixtures", WORKSPACE / "tests/python/conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


fixtures = _python_fixtures()
pebble = fixtures.pebble
pebble_bind = fixtures.pebble_bind
pebble_ocsp = fixtures.pebble_ocsp
_own_data_home = fixtures._own_data_home


class Pebble(Protocol):
    """What these tests use of tests/python's Pebble fixture."""

    directory_url: str
    http_port: int
    tls_port: int
    root_file: str
    api_ca_file: str

    def orders(self) -> int: ...


class OcspResponder(Protocol):
    """What these tests use of tests/python's OCSP responder fixture."""

    def set(self, serial: str, status: str) -> None: ...


class Bind(Protocol):
    """What these tests use of tests/python's BIND9 fixture."""

    port: int
    tsig_key: str
    tsig_secret: str

    def txt(self, name: str) -> List[str]: ...


class Nginx:
    """One nginx: its prefix folder, configuration and log; stopped (gracefully) at the end."""

    def __init__(
        self, folder: Path, http: str, workers: int = 4, valgrind: Optional[List[str]] = None, daemon: bool = False
    ) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.conf = folder / "nginx.conf"
        self.error_log = folder / "error.log"
        self.valgrind = valgrind
        single = valgrind is not None
        user = "user root root;\n" if os.geteuid() == 0 else ""
        temp = "".join(
            f"{kind}_temp_path {folder}/{kind};\n"
            for kind in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
        )
        self.conf.write_text(
            f"load_module {MODULE};\n{user}"
            f"worker_processes {workers};\n"
            f"master_process {'off' if single else 'on'};\ndaemon {'on' if daemon else 'off'};\n"
            f"error_log {self.error_log} info;\npid {folder}/nginx.pid;\n"
            "events { worker_connections 1024; }\n"
            f"http {{\naccess_log off;\n{temp}{http}\n}}\n"
        )
        self.daemon = daemon
        self.pid_file = folder / "nginx.pid"
        self.proc: Optional["subprocess.Popen[bytes]"] = None
        self.master = 0

    def command(self, *args: str) -> List[str]:
        # an absolute path: a binary upgrade runs argv[0] again
        return [shutil.which("nginx") or "/usr/sbin/nginx", "-p", str(self.folder), "-c", str(self.conf), "-e", str(self.error_log), *args]

    def test(self) -> Tuple[int, str]:
        out = subprocess.run(self.command("-t"), capture_output=True, text=True)
        return out.returncode, out.stdout + out.stderr

    def start(self) -> "Nginx":
        rc, out = self.test()
        assert rc == 0, out
        self.proc = subprocess.Popen([*(self.valgrind or []), *self.command()])
        self.master = self.proc.pid
        deadline = time.monotonic() + (120 if self.valgrind else 20)
        while "start worker process" not in self.log() and not self.valgrind:
            assert self.daemon or self.proc.poll() is None, self.log()
            assert time.monotonic() < deadline, self.log()
            time.sleep(0.05)
        if self.daemon:
            assert self.proc.wait(timeout=20) == 0, self.log()
            self.master = int(self.pid_file.read_text())
        return self

    def reload(self) -> None:
        os.kill(self.master, signal.SIGHUP)

    def stop(self) -> int:
        """Graceful stop (QUIT); the master's exit status (0 for a daemon that left)."""
        if not self.master:
            return 0
        if self.proc is not None and not self.daemon:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGQUIT)
                try:
                    self.proc.wait(timeout=120 if self.valgrind else 30)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            rc = self.proc.returncode
        else:
            rc = 0 if stop_process(self.master) else 1
        self.proc, self.master = None, 0
        return rc

    def log(self) -> str:
        return self.error_log.read_text(errors="replace") if self.error_log.exists() else ""


def running(pid: int) -> bool:
    """True while `pid` exists and is not a zombie (a daemon's exit is reaped by init, if ever)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def stop_process(pid: int, timeout: float = 30) -> bool:
    """QUIT to a process that is not our child, then KILL after `timeout`; true if it left by itself."""
    if not running(pid):
        return True
    os.kill(pid, signal.SIGQUIT)
    deadline = time.monotonic() + timeout
    while running(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            return False
        time.sleep(0.05)
    return True


@pytest.fixture
def nginxes() -> Iterator[List[Nginx]]:
    """Every nginx a test starts is stopped when it ends, whatever happened."""
    started: List[Nginx] = []
    yield started
    for n in started:
        n.stop()


def acme_settings(pebble: Pebble, storage: Path, challenges: str = "") -> str:
    """The http-level certmagic directives for the test Pebble."""
    return (
        f"certmagic_ca {pebble.directory_url};\n"
        f"certmagic_trusted_roots {pebble.api_ca_file};\n"
        "certmagic_email nginx-tests@certmagic-rs.test;\n"
        "certmagic_agree_terms on;\n"
        f"certmagic_storage {storage};\n"
        + (f"certmagic_challenges {challenges};\n" if challenges else "")
    )


def tls_get(port: int, name: str, cafile: str, timeout: float = 10) -> Tuple[int, bytes, bytes]:
    """GET https://name/ on 127.0.0.1:port verified against cafile: (status, body, leaf DER)."""
    ctx = ssl.create_default_context(cafile=cafile)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
        with ctx.wrap_socket(raw, server_hostname=name) as tls:
            leaf = tls.getpeercert(binary_form=True) or b""
            tls.sendall(f"GET / HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while True:
                chunk = tls.recv(65536)
                if not chunk:
                    break
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body, leaf


def wait_served(port: int, names: List[str], cafile: str, timeout: float = 90) -> None:
    """Until every name is served over HTTPS with a chain that verifies against cafile."""
    deadline = time.monotonic() + timeout
    pending = list(names)
    last: BaseException = AssertionError("never tried")
    while pending:
        try:
            status, body, _ = tls_get(port, pending[0], cafile)
            assert status == 200, status
            assert body == f"{pending[0]}\n".encode(), body
            pending.pop(0)
            continue
        except (OSError, AssertionError) as e:
            last = e
        if time.monotonic() > deadline:
            raise AssertionError(f"{pending[0]} not served in {timeout} s: {last!r}")
        time.sleep(0.2)


def tls_server(port: int, names: List[str], extra: str = "") -> str:
    """A TLS server block answering its name in the body."""
    return (
        f"server {{\n listen 127.0.0.1:{port} ssl;\n server_name {' '.join(names)};\n certmagic on;\n{extra}"
        " location / { return 200 \"$ssl_server_name\\n\"; }\n}\n"
    )


def http_server(port: int) -> str:
    """The plain-HTTP server the CA's HTTP-01 validations arrive on, redirecting everything else
    to HTTPS at server level (validations are answered before any rewrite)."""
    return f"server {{\n listen 127.0.0.1:{port};\n server_name _;\n return 301 https://$host$request_uri;\n}}\n"
