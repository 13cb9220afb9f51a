#!/usr/bin/env bash
# Create the benchmark's own environment, benchmarks/.venv: the peers (dask.distributed, Ray)
# and numpy/psutil from requirements.txt, plus the four dist packages from packages/ as
# editable installs. None of this becomes a dependency of any dist package.
#
#   benchmarks/setup.sh            # create or update the venv
#   PYTHON=python3.12 benchmarks/setup.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
venv="$here/.venv"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip

# A peer that will not install (no wheel for this platform, say) must not block the others:
# the suite reports it as missing with the import error.
while read -r requirement; do
    case "$requirement" in ''|'#'*) continue ;; esac
    "$venv/bin/python" -m pip install --quiet "$requirement" \
        || echo "setup: could not install $requirement; it will be reported as missing" >&2
done < "$here/requirements.txt"

# The protocol first: the others pin it, and it is not on any index.
installed=()
for package in dist-protocol dist-center dist-worker dist-client; do
    dir="$root/packages/$package"
    if [ -f "$dir/pyproject.toml" ] && [ -d "$dir/src" ]; then
        "$venv/bin/python" -m pip install --quiet --no-deps -e "$dir"
        installed+=("$package")
    else
        echo "setup: $package has no sources yet; dist will be reported as missing" >&2
    fi
done
# Their third-party dependencies, now that the local ones are present.
if [ ${#installed[@]} -gt 0 ]; then
    args=()
    for package in "${installed[@]}"; do args+=(-e "$root/packages/$package"); done
    "$venv/bin/python" -m pip install --quiet "${args[@]}"
fi

echo "benchmark environment ready: $venv"
echo "run: $venv/bin/python $here/run.py   (or: python $here/run.py, which switches to it)"
