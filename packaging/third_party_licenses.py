#!/usr/bin/env python3
"""Prints the licences of what the shipped binaries link in: every crate the given workspace
packages depend on for the target (normal dependencies; build scripts and proc macros do not
ship), with each distinct licence text once, followed by the crates it covers.

Usage: third_party_licenses.py --target <triple> -p <package> [-p <package> ...]"""

import argparse
import json
import os
import subprocess
import sys
from collections import OrderedDict

NAMES = ("LICENSE", "LICENCE", "COPYING", "NOTICE")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True)
    parser.add_argument("-p", "--package", action="append", required=True)
    args = parser.parse_args()
    meta = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--locked", "--filter-platform", args.target],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    packages = {p["id"]: p for p in meta["packages"]}
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    members = set(meta["workspace_members"])
    roots = [i for i in members if packages[i]["name"] in args.package]
    missing = set(args.package) - {packages[i]["name"] for i in roots}
    if missing:
        print(f"unknown workspace packages: {', '.join(sorted(missing))}", file=sys.stderr)
        return 1

    shipped, todo = set(), list(roots)
    while todo:
        node = nodes[todo.pop()]
        for dep in node["deps"]:
            if not any(k["kind"] is None for k in dep["dep_kinds"]):
                continue
            package = packages[dep["pkg"]]
            if all("proc-macro" in t["kind"] for t in package["targets"]):
                continue
            if dep["pkg"] not in shipped:
                shipped.add(dep["pkg"])
                todo.append(dep["pkg"])
    shipped -= members

    texts: "OrderedDict[str, list[str]]" = OrderedDict()
    without = []
    for pid in sorted(shipped, key=lambda i: (packages[i]["name"], packages[i]["version"])):
        package = packages[pid]
        label = f"{package['name']} {package['version']} ({package.get('license') or 'see text'})"
        folder = os.path.dirname(package["manifest_path"])
        files = sorted(f for f in os.listdir(folder) if f.upper().startswith(NAMES) and os.path.isfile(os.path.join(folder, f)))
        if not files:
            without.append(label)
        for name in files:
            with open(os.path.join(folder, name), encoding="utf-8", errors="replace") as f:
                texts.setdefault(f.read().strip(), []).append(label)

    out = sys.stdout
    out.write("Third-party software in the certmagic binaries, and the licences it comes under.\n")
    out.write(f"{len(shipped)} crates for {args.target}.\n\n")
    for text, labels in texts.items():
        out.write("=" * 78 + "\n")
        out.write("Used by: " + "; ".join(OrderedDict.fromkeys(labels)) + "\n\n")
        out.write(text + "\n\n")
    if without:
        out.write("=" * 78 + "\n")
        out.write("Crates shipping no licence file (their licence expression applies, texts above):\n")
        out.write("".join(f"  {label}\n" for label in without))
    return 0


if __name__ == "__main__":
    sys.exit(main())
