#!/usr/bin/env bash
# Build (or reuse) the pinned virtual environment and install this checkout into it.
# Prints the venv path on stdout; everything else goes to stderr.
#
# The venv lives outside the clone, named by a hash of requirements.lock and the Python
# version, so clones with the same pins share it and a pin change builds a new one.
# A fresh machine builds it from scratch (about 3.5 minutes; torch comes from local disk).
# SIGNPIPE_VENV=/path overrides the location; PYTHON picks the interpreter (default python3).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
pyver=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
key=$(cat "$root/requirements.lock" <(echo "$pyver") | sha256sum | cut -c1-12)
venv=${SIGNPIPE_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/signpipe/venv-py$pyver-$key}

# pip, without the machine-level index's "Location ... is ignored" warnings.
pip_quiet() { "$venv/bin/python" -m pip "$@" 2> >(grep -v '^WARNING: Location' >&2); }

if [ ! -f "$venv/.complete" ]; then
    echo "signpipe: building the pinned environment in $venv (a few minutes, once)" >&2
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    start=$(date +%s)
    "$python" -m venv "$venv"
    pip_quiet install -q --upgrade pip setuptools
    pip_quiet install -q -r "$root/requirements.lock"
    "$venv/bin/python" -m pip check >&2
    touch "$venv/.complete"
    echo "signpipe: environment built in $(( $(date +%s) - start )) s" >&2
fi
# Point the venv at this checkout (seconds; no dependency is touched). Quiet unless it fails.
if ! out=$("$venv/bin/python" -m pip install -q --no-deps --no-build-isolation -e "$root" 2>&1); then
    echo "$out" >&2
    exit 1
fi
echo "$venv"
