"""The module under valgrind: nginx in one process (`master_process off; daemon off;`) obtains a
certificate, serves it and an on-demand one, reloads (the managers move to the new
configuration), and exits with no leak and no invalid access from the module or the library."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import List

from conftest import Nginx, Pebble, acme_settings, http_server, tls_get, tls_server, wait_served


def test_obtain_and_serve_under_valgrind(pebble: Pebble, tmp_path: Path, nginxes: List[Nginx]) -> None:
    log = tmp_path / "valgrind.log"
    valgrind = [
        "valgrind", "--leak-check=full", "--show-leak-kinds=definite,indirect",
        "--errors-for-leak-kinds=definite,indirect", "--error-exitcode=99", f"--log-file={log}",
        f"--suppressions={Path(__file__).parent / 'nginx.supp'}",
    ]
    http = acme_settings(pebble, tmp_path / "storage") + http_server(pebble.http_port)
    http += tls_server(pebble.tls_port, ["vg.nginx.test"])
    http += (
        f"server {{\n listen 127.0.0.1:{pebble.tls_port} ssl default_server;\n server_name _;\n"
        " certmagic on;\n certmagic_on_demand allow=od.vg.nginx.test;\n"
        " location / { return 200 \"$ssl_server_name\\n\"; }\n}\n"
    )
    nginx = Nginx(tmp_path / "nginx", http, workers=1, valgrind=valgrind).start()
    nginxes.append(nginx)
    wait_served(pebble.tls_port, ["vg.nginx.test"], pebble.root_file, timeout=300)
    status, body, _ = tls_get(pebble.tls_port, "od.vg.nginx.test", pebble.root_file, timeout=120)
    assert (status, body) == (200, b"od.vg.nginx.test\n")
    assert pebble.orders() == 2
    # A reload in one process: the module stops the managers of the configuration it leaves
    # and starts the new one's (checked here by valgrind). nginx itself serves TLS no more after
    # a reload without a master process (stock behaviour, module or not), so nothing is asked.
    reloads = nginx.log().count("using the")
    nginx.reload()
    deadline = time.monotonic() + 120
    while nginx.log().count("using the") == reloads:
        assert time.monotonic() < deadline, nginx.log()
        time.sleep(0.1)
    time.sleep(2)
    assert "managers restarted" in nginx.log(), nginx.log()
    rc = nginx.stop()
    text = log.read_text()
    summary = re.search(r"ERROR SUMMARY: (\d+) errors", text)
    assert summary is not None, text[-3000:]
    assert rc == 0 and summary.group(1) == "0", text[-6000:]
