#!/usr/bin/env bash
# A fresh Python virtual environment with pip: packaging/venv.sh DIR [PYTHON (python3)].
# `python -m venv` captures what ensurepip prints, so when it fails (a CI run once did) there is
# nothing to read. Then this says which Python and how much disk is left, runs ensurepip where its
# output shows, and as a last resort puts pip in with the outer Python's own pip.
set -euo pipefail
dir=$1
python=${2:-python3}
rm -rf "$dir"
"$python" -m venv "$dir" && exit 0
echo "venv.sh: '$python -m venv $dir' failed; $python is $(command -v "$python"), $("$python" --version 2>&1)" >&2
df -h "$(dirname "$dir")" >&2 || true
rm -rf "$dir"
"$python" -m venv --without-pip "$dir"
"$dir/bin/python" -m ensurepip --upgrade --default-pip >&2 && exit 0
echo "venv.sh: ensurepip failed (above); installing pip with $python's own pip" >&2
"$python" -m pip --python "$dir/bin/python" install -q pip
