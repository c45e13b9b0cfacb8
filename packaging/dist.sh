#!/usr/bin/env bash
# `make dist [DIST_TARGET=<rust triple>]`: everything a release publishes for Linux on x86_64
# (default) or aarch64 (glibc), written to dist/ (for x86_64):
#   certmagic-<v>-cp39-abi3-manylinux_2_17_x86_64.whl, certmagic-<v>.tar.gz   (PyPI)
#   certmagic-<v>.tgz, certmagic-linux-x64-gnu-<v>.tgz                           (npm)
#   certmagic-<v>-x86_64-linux-gnu.tar.gz                                        (the C release)
#   certmagic-<v>.crate                                                          (crates.io)
#   SHA256SUMS
# One cargo build of the dependency tree serves the C library, the Node addon and the Python
# extension: all three link through zig's cc against glibc 2.17's symbols (the manylinux2014
# floor), with the `ziglang` package from PyPI, so every artifact runs on glibc >= 2.17.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

TRIPLE=${DIST_TARGET:-x86_64-unknown-linux-gnu}
case $TRIPLE in
  x86_64-unknown-linux-gnu) ARCH=x86_64 NPM_PLATFORM=linux-x64-gnu ;;
  aarch64-unknown-linux-gnu) ARCH=aarch64 NPM_PLATFORM=linux-arm64-gnu ;;
  *) echo "dist: no release recipe for $TRIPLE yet (x86_64/aarch64-unknown-linux-gnu)" >&2; exit 1 ;;
esac
ZIG_TARGET=$ARCH-linux-gnu.2.17
C_PLATFORM=$ARCH-linux-gnu
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
# One version everywhere: Cargo and the npm packages.
for manifest in bindings/node/package.json bindings/node/npm/*/package.json; do
  got=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' "$manifest")
  [ "$got" = "$version" ] || { echo "dist: $manifest has version $got, Cargo.toml $version" >&2; exit 1; }
done

source packaging/zig.sh
use_zig "$TRIPLE" "$ZIG_TARGET"

rm -rf dist && mkdir -p dist
out=target/$TRIPLE/release
stage=target/dist-stage
rm -rf "$stage" && mkdir -p "$stage"

echo "==> Rust: libcertmagic (C) and the Node addon"
# Without the rlib (see ffi/Cargo.toml) so that LTO applies.
cargo rustc --release --locked --target "$TRIPLE" -p certmagic-ffi --crate-type cdylib,staticlib
cargo build --release --locked --target "$TRIPLE" -p certmagic-node

echo "==> Python: abi3 wheel (manylinux2014) and sdist"
"$venv/bin/maturin" build --release --locked --target "$TRIPLE" --compatibility manylinux2014 \
  -m bindings/python/Cargo.toml --out dist
"$venv/bin/maturin" sdist -m bindings/python/Cargo.toml --out dist
"$venv/bin/auditwheel" show dist/certmagic-"$version"-*.whl | grep -q "\"manylinux_2_17_$ARCH\"" ||
  { "$venv/bin/auditwheel" show dist/certmagic-"$version"-*.whl; echo "dist: the wheel is not manylinux_2_17_$ARCH" >&2; exit 1; }

# What the shipped binaries link in (Rust crates, aws-lc), with their licence texts.
python3 packaging/third_party_licenses.py --target "$TRIPLE" \
  -p certmagic-ffi -p certmagic-node -p certmagic-python >"$stage/THIRD-PARTY-LICENSES.txt"

echo "==> Node: certmagic and certmagic-$NPM_PLATFORM"
# Packed from a copy, so the licence files of the repository's root go in.
main_stage=$stage/node-main
mkdir -p "$main_stage"
(cd bindings/node && cp $(python3 -c 'import json; print(" ".join(f for f in json.load(open("package.json"))["files"] if not f.startswith("LICENSE")))') "$root/$main_stage/")
# The published manifest names every platform package as an optional dependency, at this
# version (what napi-rs's prepublish step does): the checkout's manifest cannot, as npm would
# look them up before they are published.
python3 - "$version" "$main_stage/package.json" <<'MANIFEST'
import json, os, sys
version, out = sys.argv[1], sys.argv[2]
manifest = json.load(open("bindings/node/package.json"))
manifest["optionalDependencies"] = {f"certmagic-{p}": version for p in sorted(os.listdir("bindings/node/npm"))}
with open(out, "w") as f:
    json.dump(manifest, f, indent=2)
    f.write("\n")
MANIFEST
cp LICENSE-APACHE LICENSE-MIT "$main_stage/"
(cd "$main_stage" && npm pack --silent --pack-destination "$root/dist" >/dev/null)
platform_stage=$stage/node-$NPM_PLATFORM
cp -r "bindings/node/npm/$NPM_PLATFORM" "$platform_stage"
cp LICENSE-APACHE LICENSE-MIT "$stage/THIRD-PARTY-LICENSES.txt" "$platform_stage/"
install -m 0755 "$out/libcertmagic_node.so" "$platform_stage/certmagic.$NPM_PLATFORM.node"
(cd "$platform_stage" && npm pack --silent --pack-destination "$root/dist" >/dev/null)

echo "==> C: certmagic-$version-$C_PLATFORM.tar.gz"
c_name=certmagic-$version-$C_PLATFORM
make --no-print-directory install-files BUILD_DIR="$out" DESTDIR="$root/$stage/$c_name" PREFIX= RELOCATABLE=1 >/dev/null
cp LICENSE-APACHE LICENSE-MIT README.md "$stage/THIRD-PARTY-LICENSES.txt" "$stage/$c_name/"
# The nginx module's sources, built against this library through pkg-config (its README).
install -d "$stage/$c_name/share/certmagic/nginx"
install -m 0644 bindings/nginx/config bindings/nginx/ngx_http_certmagic_module.c bindings/nginx/README.md \
  "$stage/$c_name/share/certmagic/nginx/"
tar -C "$stage" --owner=0 --group=0 --numeric-owner -czf "dist/$c_name.tar.gz" "$c_name"

echo "==> Rust: certmagic-$version.crate (built from its own tarball)"
cargo package --locked -q -p certmagic
cp "target/package/certmagic-$version.crate" dist/

# Only certmagic_* leaves the C library (the Rust runtime, aws-lc and the rest stay inside).
stray=$(nm -D --defined-only "$stage/$c_name/lib/libcertmagic.so.$version" | awk '{print $3}' | grep -v '^certmagic_' || true)
[ -z "$stray" ] || { echo "dist: libcertmagic.so exports more than certmagic_*: $stray" >&2; exit 1; }

(cd dist && sha256sum -- * >SHA256SUMS)
python3 packaging/sizes.py dist "$stage/$c_name"
