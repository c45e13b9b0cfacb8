#!/usr/bin/env python3
"""make test-dist: installs what `make dist` wrote the way users install it, each in a fresh
temporary folder with no Rust toolchain on PATH, and proves each install works: a program
obtains a certificate from a real Pebble (validation on) and serves HTTPS, and this script's
handshake verifies the served chain against Pebble's root.

  1. Python: a fresh venv, `pip install '<wheel>[serve]'`, tests/dist/serve.py (Hypercorn).
  2. Node: a fresh npm project installs the two tarballs with npm's default script policy,
     tests/dist/serve.mjs; a project without the platform package gets the loader's message.
  3. C: the release tarball unpacked to a prefix, examples/c/openssl_server.c built with
     `pkg-config --cflags --libs certmagic openssl` only; a program linked to libcertmagic.a;
     the nginx module from the tarball's share/certmagic/nginx built with Debian's nginx-dev
     (pkg-config finding the library), loaded into Debian's nginx, serving a name from Pebble.
  4. The sdist, with cargo on PATH: `pip install <sdist>` builds it from its own sources, and
     serve.py runs on the result.

Needs: target/debug/pebble-env (the shared Pebble launcher), python3 with venv, node/npm, cc,
pkg-config and OpenSSL's headers. Stdlib only."""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "dist"
HERE = Path(__file__).resolve().parent


def log(message: str) -> None:
    print(f"test-dist: {message}", flush=True)


def only(pattern: str, unless: str = "\0") -> Path:
    found = [f for f in glob.glob(str(DIST / pattern)) if unless not in os.path.basename(f)]
    if len(found) != 1:
        sys.exit(f"test-dist: expected one dist/{pattern}, found {found or 'none'} (run make dist)")
    return Path(found[0])


def without_rust(env: Dict[str, str]) -> Dict[str, str]:
    """The environment with every PATH entry holding cargo or rustc removed."""
    clean = dict(env)
    for var in ("CARGO", "CARGO_HOME", "RUSTUP_HOME", "RUSTC", "CARGO_TARGET_DIR", "RUSTFLAGS"):
        clean.pop(var, None)
    dirs = [d for d in env.get("PATH", "").split(os.pathsep) if d]
    clean["PATH"] = os.pathsep.join(
        d for d in dirs if not any(os.path.exists(os.path.join(d, tool)) for tool in ("cargo", "rustc", "rustup"))
    )
    for tool in ("cargo", "rustc"):
        assert shutil.which(tool, path=clean["PATH"]) is None, f"{tool} still on PATH"
    return clean


def run(argv: List[str], cwd: Path, env: Dict[str, str], timeout: float = 900) -> str:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        sys.exit(f"test-dist: {' '.join(argv)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


class Pebble:
    def __init__(self, folder: Path) -> None:
        exe = os.environ.get("CERTMAGIC_PEBBLE_ENV", str(ROOT / "target/debug/pebble-env"))
        self.proc = subprocess.Popen([exe], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        info = json.loads(self.proc.stdout.readline())
        self.directory_url: str = info["directory_url"]
        self.http_port: int = info["http_port"]
        self.tls_port: int = info["tls_port"]
        self.log = Path(info["log"])
        self.api_ca = folder / "pebble-api-ca.pem"
        self.api_ca.write_text(info["api_ca_pem"])
        self.root = folder / "pebble-root.pem"
        self.root.write_text(info["root_pem"])

    def orders(self) -> int:
        return self.log.read_text().count("Added order")

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def https_get(port: int, name: str, cafile: Path) -> bytes:
    context = ssl.create_default_context(cafile=str(cafile))
    with socket.create_connection(("127.0.0.1", port), timeout=20) as raw:
        with context.wrap_socket(raw, server_hostname=name) as tls:
            tls.sendall(f"GET / HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while True:
                chunk = tls.recv(65536)
                if not chunk:
                    break
                data += chunk
    return data


def serve_and_verify(label: str, argv: List[str], cwd: Path, env: Dict[str, str], pebble: Pebble, name: str, port: int) -> None:
    """Runs a program of the READY protocol, verifies one HTTPS request, then closes its stdin."""
    orders = pebble.orders()
    errors = cwd / f"{label.replace(' ', '-')}.stderr"
    with open(errors, "w") as stderr:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True)
    assert proc.stdout is not None and proc.stdin is not None
    deadline = time.monotonic() + 180
    line = ""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line or line.strip() == "READY":
            break
    if line.strip() != "READY":
        proc.kill()
        proc.wait(timeout=30)
        sys.exit(f"test-dist: {label}: no READY ({proc.returncode}):\n{errors.read_text()}")
    try:
        reply = https_get(port, name, pebble.root)
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
    err = errors.read_text()
    head, _, body = reply.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200") or not body.startswith(b"hello from"):
        sys.exit(f"test-dist: {label}: unexpected reply {reply[:300]!r}\n{err}")
    if proc.returncode != 0:
        sys.exit(f"test-dist: {label}: exited with {proc.returncode}:\n{err}")
    if pebble.orders() != orders + 1:
        sys.exit(f"test-dist: {label}: expected one new order at Pebble, saw {pebble.orders() - orders}")
    log(f"{label}: obtained from Pebble, served {name}, handshake verified against Pebble's root")


def python_install_and_serve(label: str, package: str, name: str, work: Path, env: Dict[str, str],
                             install_env: Dict[str, str], pebble: Pebble) -> None:
    """pip installs `package` with its `serve` extra into a fresh venv, checks the module comes
    from that venv, and serves `name` with tests/dist/serve.py."""
    venv = work / "venv"
    run(["bash", str(ROOT / "packaging/venv.sh"), str(venv), sys.executable], work, env)
    run([str(venv / "bin/python"), "-m", "pip", "install", "-q", f"{package}[serve]"], work, install_env, timeout=1800)
    where = run([str(venv / "bin/python"), "-c", "import certmagic._certmagic as m; print(m.__file__)"], work, env)
    assert where.startswith(str(venv)), where
    argv = [str(venv / "bin/python"), str(HERE / "serve.py"), pebble.directory_url, str(pebble.api_ca),
            str(pebble.http_port), str(pebble.tls_port), str(work / "storage"), name]
    serve_and_verify(label, argv, work, env, pebble, name, pebble.tls_port)


def python_wheel(work: Path, env: Dict[str, str], pebble: Pebble) -> None:
    wheel = only("certmagic-*.whl")
    python_install_and_serve("python wheel", str(wheel), "py-dist.example.test", work, env, env, pebble)


def node(work: Path, env: Dict[str, str], pebble: Pebble) -> None:
    main = only("certmagic-[0-9]*.tgz")
    platform = only("certmagic-linux-*.tgz")
    platform_name = platform.name.rsplit("-", 1)[0]
    project = work / "app"
    project.mkdir()
    (project / "package.json").write_text('{"name": "dist-check", "private": true, "type": "module"}\n')
    npm = ["npm", "install", "--no-audit", "--no-fund"]
    out = run(npm + [str(platform), str(main)], project, env)
    installed = sorted(p.name for p in (project / "node_modules").iterdir() if not p.name.startswith("."))
    assert installed == ["certmagic", platform_name], f"{installed}\n{out}"
    shutil.copy(HERE / "serve.mjs", project / "serve.mjs")
    name = "node-dist.example.test"
    argv = ["node", "serve.mjs", pebble.directory_url, str(pebble.api_ca), str(pebble.http_port),
            str(pebble.tls_port), str(work / "storage"), name]
    serve_and_verify("node packages", argv, project, env, pebble, name, pebble.tls_port)

    # Without its platform package (as `--omit=optional` leaves it), the loader names it.
    bare = work / "bare"
    bare.mkdir()
    (bare / "package.json").write_text('{"name": "dist-bare", "private": true}\n')
    run(npm + ["--omit=optional", str(main)], bare, env)
    failed = subprocess.run(["node", "-e", "require('certmagic')"], cwd=bare, env=env, capture_output=True, text=True)
    if failed.returncode == 0 or f"package {platform_name}, which is not installed" not in failed.stderr:
        sys.exit(f"test-dist: node without its platform package: {failed.returncode}\n{failed.stderr}")
    log(f"node packages: without the platform package, the loader names {platform_name}")


def c_release(work: Path, env: Dict[str, str], pebble: Pebble) -> None:
    archive = only("certmagic-*-linux-gnu.tar.gz")
    with tarfile.open(archive) as t:
        t.extractall(work, filter="data") if sys.version_info >= (3, 12) else t.extractall(work)
    (prefix,) = [p for p in work.iterdir() if p.is_dir() and p.name.startswith("certmagic-")]
    pc_env = dict(env, PKG_CONFIG_PATH=str(prefix / "lib/pkgconfig"))
    flags = run(["pkg-config", "--cflags", "--libs", "certmagic", "openssl"], work, pc_env).split()
    exe = work / "openssl_server"
    run(["cc", "-std=c99", "-Wall", "-Werror", str(ROOT / "examples/c/openssl_server.c"), *flags,
         "-lpthread", f"-Wl,-rpath,{prefix / 'lib'}", "-o", str(exe)], work, pc_env)
    needed = run(["readelf", "-d", str(exe)], work, env)
    assert "libcertmagic.so.0" in needed, needed
    name = "c-dist.example.test"
    argv = [str(exe), pebble.directory_url, str(pebble.api_ca), str(pebble.tls_port), str(work / "storage"), name]
    serve_and_verify("C release (shared)", argv, work, env, pebble, name, pebble.tls_port)

    # Static: the archive and the libraries pkg-config lists for it.
    static_libs = [f for f in run(["pkg-config", "--static", "--libs-only-l", "certmagic"], work, pc_env).split() if f != "-lcertmagic"]
    cflags = run(["pkg-config", "--cflags", "certmagic"], work, pc_env).split()
    source = work / "version.c"
    source.write_text(
        '#include <certmagic.h>\n#include <stdio.h>\n#include <string.h>\n'
        'int main(void) { printf("%s\\n", certmagic_version()); return strcmp(certmagic_version(), CERTMAGIC_VERSION) != 0; }\n'
    )
    static_exe = work / "version-static"
    run(["cc", "-std=c99", "-Wall", "-Werror", *cflags, str(source), str(prefix / "lib/libcertmagic.a"), *static_libs,
         "-o", str(static_exe)], work, env)
    assert "libcertmagic" not in run(["readelf", "-d", str(static_exe)], work, env)
    version = run([str(static_exe)], work, env).strip()
    log(f"C release (static): a program linked to libcertmagic.a runs (version {version})")
    nginx_module(work, prefix, pc_env, pebble)


def nginx_module(work: Path, prefix: Path, pc_env: Dict[str, str], pebble: Pebble) -> None:
    """The module's sources as shipped, built as Debian builds nginx modules, in Debian's nginx."""
    source = work / "nginx-src"
    shutil.copytree("/usr/share/nginx/src", source)
    flags = run(["bash", "-c", '. ./conf_flags && printf "%s\\n" "${NGX_CONF_FLAGS[@]}"'], source, pc_env).split("\n")
    run(["./configure", *[f for f in flags if f], f"--add-dynamic-module={prefix / 'share/certmagic/nginx'}"],
        source, pc_env)
    run(["make", "-f", "objs/Makefile", "modules"], source, pc_env)
    module = source / "objs/ngx_http_certmagic_module.so"
    name = "nginx-dist.example.test"
    folder = work / "nginx"
    folder.mkdir()
    user = "user root root;\n" if os.geteuid() == 0 else ""
    temp = "".join(f"{k}_temp_path {folder}/{k};\n" for k in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"])
    conf = folder / "nginx.conf"
    conf.write_text(
        f"load_module {module};\n{user}worker_processes 1;\ndaemon off;\nerror_log {folder}/error.log info;\n"
        f"pid {folder}/nginx.pid;\nevents {{}}\nhttp {{\naccess_log off;\n{temp}"
        f"certmagic_ca {pebble.directory_url};\ncertmagic_trusted_roots {pebble.api_ca};\n"
        f"certmagic_agree_terms on;\ncertmagic_storage {folder}/storage;\n"
        f"server {{ listen 127.0.0.1:{pebble.http_port}; return 404; }}\n"
        f"server {{ listen 127.0.0.1:{pebble.tls_port} ssl; server_name {name}; certmagic on;\n"
        f"  location / {{ return 200 'hello from nginx\\n'; }} }}\n}}\n"
    )
    # The library is found as an installed one would be (here: the unpacked prefix).
    env = dict(pc_env, LD_LIBRARY_PATH=str(prefix / "lib"))
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    command = [nginx, "-p", str(folder), "-c", str(conf), "-e", str(folder / "error.log")]
    run([*command, "-t"], folder, env)
    orders = pebble.orders()
    proc = subprocess.Popen(command, cwd=folder, env=env)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                reply = https_get(pebble.tls_port, name, pebble.root)
                break
            except (OSError, ssl.SSLError) as e:
                if time.monotonic() > deadline or proc.poll() is not None:
                    sys.exit(f"test-dist: nginx module: {name} not served: {e!r}\n{(folder / 'error.log').read_text()}")
                time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGQUIT)
        proc.wait(timeout=60)
    head, _, body = reply.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200") or body != b"hello from nginx\n" or pebble.orders() != orders + 1:
        sys.exit(f"test-dist: nginx module: unexpected reply {reply[:300]!r} or orders")
    log(f"C release: the nginx module built from share/certmagic/nginx serves {name}, verified against Pebble's root")


def python_sdist(work: Path, env: Dict[str, str], pebble: Pebble) -> None:
    sdist = only("certmagic-[0-9]*.tar.gz", unless="-linux-")
    # The sdist's own crates are compiled from its sources (their paths differ from the
    # checkout's); the workspace's target folder only spares compiling crates.io dependencies
    # once more. The dev profile: this proves the sdist builds, the wheel proves the release.
    build_env = dict(env, CARGO_TARGET_DIR=str(ROOT / "target"), MATURIN_PEP517_ARGS="--profile dev")
    python_install_and_serve("python sdist", str(sdist), "sdist-dist.example.test", work, env, build_env, pebble)


def main() -> None:
    steps = sys.argv[1:] or ["python", "node", "c", "sdist"]
    clean = without_rust(dict(os.environ))
    with tempfile.TemporaryDirectory(prefix="certmagic-test-dist-") as scratch:
        pebble = Pebble(Path(scratch))
        try:
            for step, function in (("python", python_wheel), ("node", node), ("c", c_release)):
                if step in steps:
                    work = Path(tempfile.mkdtemp(prefix=f"{step}-", dir=scratch))
                    function(work, clean, pebble)
            if "sdist" in steps:
                work = Path(tempfile.mkdtemp(prefix="sdist-", dir=scratch))
                python_sdist(work, dict(os.environ), pebble)
        finally:
            pebble.stop()
    log("OK")


if __name__ == "__main__":
    main()
