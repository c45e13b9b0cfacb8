# Sourced by the packaging scripts: the build tools of a release (pinned) in target/dist-venv,
# and `use_zig <rust-triple> <zig-target>`, which makes zig (from the `ziglang` package) the C
# compiler, archiver and linker cargo uses for that target. Through maturin's `zig` wrapper,
# which drops the arguments of rustc's that zig does not take.
MATURIN=1.16.0
ZIGLANG=0.17.1
AUDITWHEEL=6.8.2
venv=$PWD/target/dist-venv
if ! "$venv/bin/python" -c 'import ziglang' 2>/dev/null ||
   [ "$("$venv/bin/maturin" --version 2>/dev/null)" != "maturin $MATURIN" ]; then
  "$PWD/packaging/venv.sh" "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q "maturin==$MATURIN" "ziglang==$ZIGLANG" "auditwheel==$AUDITWHEEL"
fi

use_zig() {
  local triple=$1 zig_target=$2 dir=$PWD/target/zig/$2 tool target_args
  mkdir -p "$dir"
  for tool in cc c++ ar ranlib; do
    # UBSan off: zig turns it on for C built without -O.
    target_args=""
    case $tool in cc | c++) target_args="-fno-sanitize=all -target $zig_target" ;; esac
    cat >"$dir/$tool.tmp" <<WRAPPER
#!/bin/sh
export CARGO_ZIGBUILD_ZIG_COMMAND="$venv/bin/python" CARGO_ZIGBUILD_ZIG_COMMAND_ARGS="-m ziglang"
exec "$venv/bin/maturin" zig $tool -- $target_args "\$@"
WRAPPER
    chmod +x "$dir/$tool.tmp" && mv "$dir/$tool.tmp" "$dir/$tool"
  done
  local env_triple=${triple//-/_}
  export "CC_$env_triple=$dir/cc" "CXX_$env_triple=$dir/c++" "AR_$env_triple=$dir/ar" "RANLIB_$env_triple=$dir/ranlib"
  export "CARGO_TARGET_${env_triple^^}_LINKER=$dir/cc"
}
