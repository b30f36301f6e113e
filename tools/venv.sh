#!/usr/bin/env bash
# Build (or reuse) the pinned environment and this checkout's own layer on it.
# Prints the checkout's venv path (<checkout>/.venv) on stdout; everything else goes to stderr.
#
# Two layers, so clones share the heavy dependencies but each runs its own code:
# - shared: every pin of requirements.lock, outside the clone, named by a hash of the lock and
#   the Python version, so clones with the same pins share it and a pin change builds a new
#   one. Nothing of any checkout is installed in it. A fresh machine builds it from scratch
#   (about a minute with uv, several with pip; torch comes from local disk). SIGNPIPE_VENV=/path overrides its location.
# - <checkout>/.venv (git-ignored, seconds to make): a venv whose site-packages reads the shared
#   one's (a .pth file), with this checkout installed editable and its own bin/: python, signpipe,
#   snakemake, pytest, ... all run this checkout's code, whichever clone ran this script last.
# PYTHON picks the interpreter (default python3).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
pyver=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
key=$(cat "$root/requirements.lock" <(echo "$pyver") | sha256sum | cut -c1-12)
shared=${SIGNPIPE_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/signpipe/venv-py$pyver-$key}
venv=$root/.venv

# pip, without the machine-level index's "Location ... is ignored" warnings.
pip_quiet() { "$1/bin/python" -m pip "${@:2}" 2> >(grep -v '^WARNING: Location' >&2); }
# The lock's ~4 GB of wheels (torch and its CUDA libraries) install in about a minute with uv,
# which unpacks in parallel, against several with pip. uv is fetched into a temporary folder
# (never into the venv), pinned, and given the indexes, find-links, constraints and CA file that
# pip is configured with here (uv does not read pip's configuration); pip is the fallback. It
# compiles the bytecode as pip does: else every first import of a fresh venv compiles it.
UV_VERSION=0.13.8
uv_install() {
    local tmp status=0 key value v
    local -a args=(--index-strategy unsafe-best-match)
    tmp=$(mktemp -d)
    if ! pip_quiet "$1" install -q --target "$tmp" "uv==$UV_VERSION" >/dev/null 2>&1; then
        rm -rf "$tmp"
        return 1
    fi
    while IFS='=' read -r key value; do
        value=${value#\'}; value=${value%\'}
        for v in $value; do
            case "$key" in
                *.index-url) args+=(--index-url "$v") ;;
                *.extra-index-url) args+=(--extra-index-url "$v") ;;
                *.find-links) args+=(--find-links "$v") ;;
                *.constraint) args+=(--constraint "$v") ;;
                *.cert) export SSL_CERT_FILE="$v" ;;
            esac
        done
    done < <("$1/bin/python" -m pip config list 2>/dev/null)
    "$tmp/bin/uv" pip install -q --compile-bytecode --python "$1/bin/python" "${args[@]}" \
        -r "$root/requirements.lock" || status=$?
    rm -rf "$tmp"
    return "$status"
}
site_packages() { "$1/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'; }

if [ ! -f "$shared/.complete" ]; then
    echo "signpipe: building the pinned environment in $shared (a few minutes, once)" >&2
    rm -rf "$shared"
    mkdir -p "$(dirname "$shared")"
    start=$(date +%s)
    "$python" -m venv "$shared"
    pip_quiet "$shared" install -q --upgrade pip setuptools
    if ! uv_install "$shared"; then
        echo "signpipe: uv unavailable or failed; installing with pip (slower)" >&2
        pip_quiet "$shared" install -q -r "$root/requirements.lock"
    fi
    "$shared/bin/python" -m pip check >&2
    touch "$shared/.complete"
    echo "signpipe: environment built in $(( $(date +%s) - start )) s" >&2
fi

# This checkout's layer: made again when the shared venv it reads changed (new pins) or the
# package's metadata did (pyproject.toml: its console scripts).
if [ ! -f "$venv/.complete" ] || [ "$(cat "$venv/.shared" 2>/dev/null)" != "$shared" ] \
        || [ "$root/pyproject.toml" -nt "$venv/.complete" ]; then
    rm -rf "$venv"
    "$shared/bin/python" -m venv --without-pip "$venv"
    # site.addsitedir also runs the shared site-packages' own .pth files (e.g. setuptools').
    echo "import site; site.addsitedir('$(site_packages "$shared")')" > "$(site_packages "$venv")/signpipe_shared.pth"
    # The shared console scripts (snakemake, pytest, ...), run by this venv's python.
    for script in "$shared"/bin/*; do
        name=$(basename "$script")
        if [ ! -e "$venv/bin/$name" ] && [ -f "$script" ] && head -n 2 "$script" | grep -qF "$shared/bin/python"; then
            sed "s|$shared/bin/python|$venv/bin/python|g" "$script" > "$venv/bin/$name"
            chmod +x "$venv/bin/$name"
        fi
    done
    # compat: a plain path .pth to this checkout (no import hook that another install could shadow).
    if ! out=$(pip_quiet "$venv" install -q --no-deps --no-build-isolation \
            --config-settings editable_mode=compat -e "$root" 2>&1); then
        echo "$out" >&2
        exit 1
    fi
    echo "$shared" > "$venv/.shared"
    touch "$venv/.complete"
fi
echo "$venv"
