"""A fleet in four languages on one shared storage (Redis, then PostgreSQL), against Pebble with
validation on, behind HAProxy: a Rust instance (examples/rust/serve.rs), a C one
(examples/c/openssl_server.c), a Python one (cluster_member.py) and a Node one
(tests/node/cluster_member.mjs) all manage the same 30 names. Run by `make test-cluster`, after
the Node package is installed in tests/node.
HAProxy holds Pebble's validation ports and sends each validation round-robin to the instances,
so validations reach instances that did not order. Each certificate is ordered once, and every
instance serves every name with a chain that verifies against Pebble's root.

Also: an instance killed (SIGKILL) while it holds a name's storage lock is taken over by another
once the lock expires."""

from __future__ import annotations

import os
import random
import signal
import sys
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest

from conftest import WORKSPACE, Pebble, _start_pebble

NAMES = [f"n{i:02d}.fleet.test" for i in range(30)]
READY_WITHIN = 300.0


def reserve_ports(n: int) -> List[socket.socket]:
    """`n` free loopback ports below the kernel's ephemeral range (so no outgoing connection takes
    one meanwhile), each held by a bound socket until the instance that listens there starts:
    pebble-env, choosing its own ports meanwhile, cannot pick them."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    held: List[socket.socket] = []
    while len(held) < n:
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", random.randrange(10000, max(low, 12000))))
            held.append(s)
        except OSError:
            s.close()
    return held


def free_port() -> int:
    s = reserve_ports(1)[0]
    port: int = s.getsockname()[1]
    s.close()
    return port


class Member:
    """A running instance: its stdout lines collected, stopped by closing stdin."""

    def __init__(self, name: str, argv: List[str], log: Path, env: Optional[Dict[str, str]] = None) -> None:
        self.name = name
        self.lines: List[str] = []
        self.log = log
        self._log = open(log, "w")
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self._seen = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._seen:
                self.lines.append(line.strip())
                self._seen.notify_all()

    def wait_for(self, line: str, timeout: float = READY_WITHIN) -> None:
        with self._seen:
            ok = self._seen.wait_for(lambda: line in self.lines or self.proc.poll() is not None, timeout)
        assert ok and line in self.lines, f"{self.name} never printed {line}: exit {self.proc.poll()}\n{self.log.read_text()[-4000:]}"

    def obtained(self) -> List[str]:
        return [line.split()[1] for line in self.lines if line.startswith("OBTAINED ")]

    def stop(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def build_c_member(tmp: Path) -> Path:
    """examples/c/openssl_server.c against the workspace's libcertmagic.so (soname link beside)."""
    lib_dir = tmp / "lib"
    lib_dir.mkdir(exist_ok=True)
    built = WORKSPACE / "target/debug/libcertmagic.so"
    assert built.exists(), "build the C library first (cargo build -p certmagic-ffi)"
    for link in ("libcertmagic.so", "libcertmagic.so.0"):
        (lib_dir / link).symlink_to(built)
    exe = tmp / "openssl_server"
    subprocess.run(
        ["cc", "-std=c99", "-o", str(exe), str(WORKSPACE / "examples/c/openssl_server.c"),
         f"-I{WORKSPACE / 'include'}", f"-L{lib_dir}", f"-Wl,-rpath,{lib_dir}", "-lcertmagic", "-lssl", "-lcrypto", "-lpthread"],
        check=True,
    )
    return exe


def rust_member() -> Path:
    exe = WORKSPACE / "target/debug/examples/serve"
    assert exe.exists(), "build the Rust example first (cargo build -p certmagic --example serve)"
    return exe


def handshake(port: int, name: str, root_file: str) -> str:
    """An HTTPS GET to 127.0.0.1:port for `name`, verified against Pebble's root; the body."""
    ctx = ssl.create_default_context(cafile=root_file)
    with socket.create_connection(("127.0.0.1", port), timeout=15) as raw:
        with ctx.wrap_socket(raw, server_hostname=name) as tls:
            tls.sendall(f"GET / HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while chunk := tls.recv(4096):
                data += chunk
    return data.decode(errors="replace")


def routed(log: str) -> List[List[str]]:
    """HAProxy's `ROUTED <frontend> <instance> <name>` lines."""
    out = []
    for line in Path(log).read_text().splitlines():
        words = line.split()
        if "ROUTED" in words:
            i = words.index("ROUTED")
            if len(words) >= i + 4:
                out.append([words[i + 1], words[i + 2], words[i + 3].split(":")[0]])
    return out


@pytest.mark.parametrize("backend", ["redis", "postgres"])
def test_three_languages_behind_haproxy_share_one_storage(tmp_path: Path, backend: str) -> None:
    kinds = ("rust_http", "rust_https", "python_http", "python_https", "node_http", "node_https", "c_https")
    held = dict(zip(kinds, reserve_ports(len(kinds))))
    ports: Dict[str, int] = {k: s.getsockname()[1] for k, s in held.items()}
    c_exe = build_c_member(tmp_path)
    args = [
        "--nonce-reject", "0", f"--{backend}",
        "--fleet-http", f"rust={ports['rust_http']},python={ports['python_http']},node={ports['node_http']}",
        "--fleet-tls", f"rust={ports['rust_https']},c={ports['c_https']}",
    ]
    for pebble, info in _start_pebble(tmp_path, *args):
        storage = info[backend]["url"]
        for s in held.values():
            s.close()
        # In practice whichever instance starts managing first takes every name's lock and orders
        # all 30; the others wait for the locks, then load what it stored.
        members = [
            Member("python", [sys.executable, str(Path(__file__).parent / "cluster_member.py"),
                              pebble.directory_url, pebble.api_ca_file, str(ports["python_http"]),
                              str(ports["python_https"]), storage, *NAMES], tmp_path / "python.log"),
            Member("node", ["node", str(WORKSPACE / "tests/node/cluster_member.mjs"), pebble.directory_url,
                            pebble.api_ca_file, str(ports["node_http"]), str(ports["node_https"]), storage, *NAMES],
                   tmp_path / "node.log"),
            Member("c", [str(c_exe), pebble.directory_url, pebble.api_ca_file, str(ports["c_https"]), storage, *NAMES],
                   tmp_path / "c.log"),
            Member("rust", [str(rust_member()), pebble.directory_url, pebble.api_ca_file,
                            str(ports["rust_http"]), str(ports["rust_https"]), storage, *NAMES], tmp_path / "rust.log"),
        ]
        try:
            for m in members:
                m.wait_for("READY")
            # One order per name for the whole fleet.
            assert pebble.orders() == len(NAMES), Path(pebble.log_file).read_text()[-3000:]
            by = {n: m.name for m in members for n in m.obtained()}
            assert sum(len(m.obtained()) for m in members) <= len(NAMES)
            # Every instance serves every name, verified against Pebble's root.
            for who in ("rust", "c", "python", "node"):
                port = ports[f"{who}_https"]
                for name in NAMES:
                    body = handshake(port, name, pebble.root_file)
                    assert " 200 " in body.split("\r\n")[0], f"{who} {name}: {body[:200]}"
            # Validations reached instances that had not ordered the name (the C instance
            # prints nothing: names no one else obtained are its own).
            answered = [(server, name) for _, server, name in routed(info["haproxy"]["log"]) if name in NAMES]
            assert answered, Path(info["haproxy"]["log"]).read_text()[-2000:]
            crossed = [(s, n) for s, n in answered if s != by.get(n, "c")]
            assert crossed, f"every validation reached the instance that ordered: {answered}"
        finally:
            for m in members:
                m.stop()


def test_an_instance_killed_holding_a_lock_is_taken_over(tmp_path: Path) -> None:
    name = "killed.fleet.test"
    for pebble, info in _start_pebble(tmp_path, "--nonce-reject", "0", "--redis"):
        storage = info["redis"]["url"]
        paused = Member(
            "python",
            [sys.executable, str(Path(__file__).parent / "cluster_member.py"), pebble.directory_url,
             pebble.api_ca_file, str(free_port()), str(free_port()), storage, name],
            tmp_path / "paused.log",
            env={"PAUSE_ON_OBTAINING": name},
        )
        paused.wait_for(f"OBTAINING {name}", timeout=60)
        # The lock is held (and kept fresh) by the paused instance; SIGKILL leaves it behind.
        paused.proc.send_signal(signal.SIGKILL)
        paused.proc.wait()
        killed_at = time.monotonic()
        taker = Member(
            "rust",
            [str(rust_member()), pebble.directory_url, pebble.api_ca_file, str(pebble.http_port),
             str(pebble.tls_port), storage, name],
            tmp_path / "taker.log",
        )
        try:
            taker.wait_for("READY", timeout=120)
            waited = time.monotonic() - killed_at
            # Not before the dead holder's lease ran out (10 s after its last extension, made at
            # most 3 s before the kill), and not much after.
            assert 5.0 <= waited < 60.0, waited
            assert taker.obtained() == [name]
            assert pebble.orders() == 1
            body = handshake(pebble.tls_port, name, pebble.root_file)
            assert "hello from certmagic-rs (rust)" in body
        finally:
            taker.stop()
            paused.stop()
