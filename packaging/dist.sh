#!/usr/bin/env bash
# `make dist`: everything a release publishes for x86_64 Linux, written to dist/:
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

TRIPLE=x86_64-unknown-linux-gnu
ZIG_TARGET=x86_64-linux-gnu.2.17
NPM_PLATFORM=linux-x64-gnu
C_PLATFORM=x86_64-linux-gnu
# Build tools, pinned: what built a release is known.
MATURIN=1.16.0
ZIGLANG=0.17.1
AUDITWHEEL=6.8.2

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
for manifest in bindings/node/package.json "bindings/node/npm/$NPM_PLATFORM/package.json"; do
  got=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' "$manifest")
  [ "$got" = "$version" ] || { echo "dist: $manifest has version $got, Cargo.toml $version" >&2; exit 1; }
done
optional=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["optionalDependencies"][sys.argv[2]])' \
  bindings/node/package.json "certmagic-$NPM_PLATFORM")
[ "$optional" = "$version" ] || { echo "dist: certmagic depends on certmagic-$NPM_PLATFORM $optional, not $version" >&2; exit 1; }

venv=target/dist-venv
if ! "$venv/bin/python" -c 'import ziglang' 2>/dev/null ||
   [ "$("$venv/bin/maturin" --version 2>/dev/null)" != "maturin $MATURIN" ]; then
  rm -rf "$venv" && python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q "maturin==$MATURIN" "ziglang==$ZIGLANG" "auditwheel==$AUDITWHEEL"
fi

# zig as C compiler, archiver and linker, through maturin's wrapper (it drops the arguments of
# rustc's that zig does not take). UBSan off: zig turns it on for C built without -O.
zig=$root/target/zig
mkdir -p "$zig"
for tool in cc c++ ar ranlib; do
  target_args=""
  case $tool in cc | c++) target_args="-fno-sanitize=all -target $ZIG_TARGET" ;; esac
  cat >"$zig/$tool.tmp" <<EOF
#!/bin/sh
export CARGO_ZIGBUILD_ZIG_COMMAND="$root/$venv/bin/python" CARGO_ZIGBUILD_ZIG_COMMAND_ARGS="-m ziglang"
exec "$root/$venv/bin/maturin" zig $tool -- $target_args "\$@"
EOF
  chmod +x "$zig/$tool.tmp" && mv "$zig/$tool.tmp" "$zig/$tool"
done
triple_env=${TRIPLE//-/_}
export "CC_$triple_env=$zig/cc" "CXX_$triple_env=$zig/c++" "AR_$triple_env=$zig/ar" "RANLIB_$triple_env=$zig/ranlib"
export "CARGO_TARGET_${triple_env^^}_LINKER=$zig/cc"

rm -rf dist && mkdir -p dist
out=target/$TRIPLE/release
stage=target/dist-stage
rm -rf "$stage" && mkdir -p "$stage"

echo "==> Rust: libcertmagic (C) and the Node addon"
cargo build --release --locked --target "$TRIPLE" -p certmagic-ffi -p certmagic-node

echo "==> Python: abi3 wheel (manylinux2014) and sdist"
"$venv/bin/maturin" build --release --locked --target "$TRIPLE" --compatibility manylinux2014 \
  -m bindings/python/Cargo.toml --out dist
"$venv/bin/maturin" sdist -m bindings/python/Cargo.toml --out dist
"$venv/bin/auditwheel" show dist/certmagic-"$version"-*.whl | grep -q '"manylinux_2_17_x86_64"' ||
  { "$venv/bin/auditwheel" show dist/certmagic-"$version"-*.whl; echo "dist: the wheel is not manylinux_2_17" >&2; exit 1; }

# What the shipped binaries link in (Rust crates, aws-lc), with their licence texts.
python3 packaging/third_party_licenses.py --target "$TRIPLE" \
  -p certmagic-ffi -p certmagic-node -p certmagic-python >"$stage/THIRD-PARTY-LICENSES.txt"

echo "==> Node: certmagic and certmagic-$NPM_PLATFORM"
# Packed from a copy, so the licence files of the repository's root go in.
main_stage=$stage/node-main
mkdir -p "$main_stage"
(cd bindings/node && cp package.json $(python3 -c 'import json; print(" ".join(f for f in json.load(open("package.json"))["files"] if not f.startswith("LICENSE")))') "$root/$main_stage/")
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
tar -C "$stage" --owner=0 --group=0 --numeric-owner -czf "dist/$c_name.tar.gz" "$c_name"

echo "==> Rust: certmagic-$version.crate (built from its own tarball)"
cargo package --locked -q -p certmagic
cp "target/package/certmagic-$version.crate" dist/

# Only certmagic_* leaves the C library (the Rust runtime, aws-lc and the rest stay inside).
stray=$(nm -D --defined-only "$stage/$c_name/lib/libcertmagic.so.$version" | awk '{print $3}' | grep -v '^certmagic_' || true)
[ -z "$stray" ] || { echo "dist: libcertmagic.so exports more than certmagic_*: $stray" >&2; exit 1; }

(cd dist && sha256sum -- * >SHA256SUMS)
python3 packaging/sizes.py dist "$stage/$c_name"
