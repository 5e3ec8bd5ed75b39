#!/usr/bin/env bash
# Creates (or refreshes) the virtualenv of the Python baselines: `bash setup.sh <venv-dir>`.
#
# The benchmark compares the Rust job system with Celery and its thumbnail job with Pillow; this
# installs the pinned versions of requirements.txt. The venv keeps the SHA-256 of the
# requirements it was built from, so a second run is a no-op and a changed list rebuilds it.
set -euo pipefail

die() { echo "setup.sh: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: bash setup.sh <venv-dir>"
venv=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
requirements=$here/requirements.txt
[ -f "$requirements" ] || die "missing $requirements"

python=${PYTHON:-}
if [ -z "$python" ]; then
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1; then python=$candidate; break; fi
    done
fi
[ -n "$python" ] || die "no python3 found (set PYTHON=/path/to/python3.11)"
command -v "$python" >/dev/null 2>&1 || die "$python not found (set PYTHON=/path/to/python3.11)"
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "$python is older than Python 3.11, which Pillow 13 needs"

wanted=$(sha256sum "$requirements" | cut -d' ' -f1)
stamp=$venv/.requirements.sha256
if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$wanted" ]; then
    exit 0
fi

if [ ! -x "$venv/bin/python" ]; then
    echo "setup.sh: creating the virtualenv $venv" >&2
    "$python" -m venv "$venv" || die "could not create the virtualenv $venv (is python3-venv installed?)"
fi
rm -f "$stamp"
echo "setup.sh: installing $requirements into $venv" >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements" \
    || die "pip install -r $requirements failed (is PyPI reachable?)"
"$venv/bin/python" -c 'import celery, kombu, amqp, PIL' \
    || die "the packages installed but do not import"
echo "$wanted" > "$stamp"
echo "setup.sh: $venv is ready" >&2
