#!/usr/bin/env python3
"""Prints the size of every shipped binary (inside the packages of dist/) and of each package,
and fails if one is over its budget: 13 MB for any binary (the C shared library's was 10 MB
until the Redis and PostgreSQL storages added 1.5 MB to every binary; 12 MB until several
issuers, ARI, the local CA and ZeroSSL EAB added about 0.4 MB).

Usage: sizes.py <dist-folder> <unpacked C release folder>"""

import os
import sys
import tarfile
import zipfile

MB = 1000 * 1000
BUDGET: dict[str, int] = {}
DEFAULT_BUDGET = 13 * MB


def binaries(dist: str, c_release: str):
    for name in sorted(os.listdir(dist)):
        path = os.path.join(dist, name)
        if name.endswith(".whl"):
            with zipfile.ZipFile(path) as z:
                for info in z.infolist():
                    if info.filename.endswith(".so"):
                        yield name, info.filename, info.file_size
        elif name.endswith(".tgz"):
            with tarfile.open(path) as t:
                for member in t.getmembers():
                    if member.name.endswith(".node"):
                        yield name, member.name, member.size
    lib = os.path.join(c_release, "lib")
    for name in sorted(os.listdir(lib)):
        path = os.path.join(lib, name)
        if os.path.isfile(path) and not os.path.islink(path):
            yield os.path.basename(c_release) + ".tar.gz", "lib/" + name, os.path.getsize(path)


def main() -> int:
    dist, c_release = sys.argv[1], sys.argv[2]
    over = []
    print(f"{'package':<75} {'size':>9}")
    for name in sorted(os.listdir(dist)):
        if name != "SHA256SUMS":
            print(f"{name:<75} {os.path.getsize(os.path.join(dist, name)) / MB:>7.1f} MB")
    print(f"\n{'binary (uncompressed)':<75} {'size':>9}  budget")
    for package, member, size in binaries(dist, c_release):
        base = os.path.basename(member)
        budget = next((b for prefix, b in BUDGET.items() if base.startswith(prefix) and ".so" in base), DEFAULT_BUDGET)
        if base.endswith(".a"):
            budget = None  # an archive for static linking: see the README's size table
        mark = "" if budget is None or size <= budget else "  OVER"
        shown = "-" if budget is None else f"{budget / MB:.0f} MB"
        print(f"{package + ': ' + member:<75} {size / MB:>7.1f} MB  {shown}{mark}")
        if mark:
            over.append(member)
    if over:
        print(f"over budget: {', '.join(over)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
