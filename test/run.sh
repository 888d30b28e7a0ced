#!/usr/bin/env bash
# The test command: sets up tools/venv (or $MERIT_VENV) when needed, then runs
# the whole pytest suite. Extra arguments go to pytest (e.g. -k parse_options).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck disable=SC1091
. "${repo}/tools/activate_python.sh"
cd "${repo}"
exec python -m pytest test "$@"
