#!/usr/bin/env python3
"""`make bench-micro`'s results file: bench/results/micro.md from the run's log (the figure lines
the C, Python, Node and nginx benchmarks and the cache benchmark print) and Criterion's medians
(target/criterion/*/*/new/estimates.json).

Usage: bench/micro_report.py LOG > bench/results/micro.md
"""
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Lines of the log that carry a figure, by the words they start with.
FIGURE_LINES = (
    "memory:",
    "C get_certificate",
    "ssl_context()",
    "plain SSLContext",
    "tlsOptions()",
    "static cert/key",
    "ratio:",
    "nginx server CPU",
    "with ngx_http_certmagic_module",
    "with ssl_certificate files",
    "module's share",
)


def duration(ns: float) -> str:
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def criterion_rows() -> list:
    rows = []
    for estimates in sorted((ROOT / "target/criterion").glob("*/*/new/estimates.json")):
        group, bench = estimates.parts[-4], estimates.parts[-3]
        median = json.loads(estimates.read_text())["median"]
        rows.append(f"| {group} | {bench} | {duration(median['point_estimate'])} "
                    f"| {duration(median['confidence_interval']['lower_bound'])}–"
                    f"{duration(median['confidence_interval']['upper_bound'])} |")
    return rows


def main() -> None:
    log = Path(sys.argv[1]).read_text(errors="replace").splitlines()
    figures = [line.strip() for line in log if line.strip().startswith(FIGURE_LINES)]
    out = [
        "# `make bench-micro`",
        "",
        f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}, {os.cpu_count()} CPUs, "
        f"{platform.machine()}. Criterion medians with their 95 % interval, then the figures the "
        "hand-over benchmarks printed (each states its own target).",
        "",
        "| group | benchmark | median | interval |",
        "|---|---|---|---|",
        *criterion_rows(),
        "",
        "```",
        *figures,
        "```",
    ]
    print("\n".join(out))


if __name__ == "__main__":
    main()
