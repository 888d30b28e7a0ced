#!/usr/bin/env bash
# Creates (or completes) merit's Python environment.
#
#   tools/install.sh [VENV_DIR]
#
# VENV_DIR defaults to $MERIT_VENV, else tools/venv. The pins live in
# tools/requirements.txt only. A stamp holding the hash of that file and setup.py
# is written after everything succeeded, so a second call on a complete environment returns
# at once and an interrupted or failed install is simply redone.
set -euo pipefail

tools_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(dirname "${tools_dir}")
venv=${1:-${MERIT_VENV:-${tools_dir}/venv}}
requirements=${tools_dir}/requirements.txt
python=${MERIT_BASE_PYTHON:-python3}

stamp=${venv}/.merit_installed   # hash of requirements.txt and setup.py, written last
managed=${venv}/.merit_managed   # marks a venv this script owns
repo_link=${venv}/.merit_repo    # the checkout installed in editable mode

# setup.py counts too: a new console entry point needs the editable install redone.
want_hash=$(cat "${requirements}" "${repo_dir}/setup.py" | sha256sum | cut -d' ' -f1)

if [ -f "${stamp}" ] && [ "$(cat "${stamp}")" = "${want_hash}" ]; then
    if [ "$(cat "${repo_link}" 2>/dev/null)" = "${repo_dir}" ]; then
        exit 0
    fi
    # Same pins, another checkout (e.g. CI's shared venv): only re-point merit.
    echo "install.sh: pointing ${venv} at the checkout ${repo_dir}" >&2
    "${venv}/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e "${repo_dir}"
    echo "${repo_dir}" > "${repo_link}"
    exit 0
fi

fail() {
    echo "install.sh: FAILED: $*" >&2
    echo "install.sh: ${venv} is incomplete (no stamp); run tools/install.sh again after fixing the cause." >&2
    exit 1
}
trap 'fail "the command on line ${LINENO} exited with status $?"' ERR

if ! "${python}" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    fail "${python} is missing or older than Python 3.10 (set MERIT_BASE_PYTHON to a newer one)"
fi

if [ -e "${venv}" ] && [ ! -e "${managed}" ]; then
    fail "${venv} exists but was not created by this script; remove it or choose another MERIT_VENV"
fi

rm -f "${stamp}"
start=$(date +%s)
echo "install.sh: creating ${venv} from tools/requirements.txt (a few minutes; torch alone is several GB)" >&2
if [ ! -x "${venv}/bin/python" ]; then
    "${python}" -m venv "${venv}"
fi
touch "${managed}"
pip=("${venv}/bin/python" -m pip)
# pip 26 refuses espnet's metadata; setuptools/wheel for the editable install.
"${pip[@]}" install --quiet 'pip<26' setuptools wheel
"${pip[@]}" install --progress-bar off -r "${requirements}"
"${pip[@]}" install --quiet --no-deps --no-build-isolation -e "${repo_dir}"
echo "${repo_dir}" > "${repo_link}"
"${venv}/bin/python" -c "import merit, espnet2.tasks.abs_task; from s3prl.nn import S3PRLUpstream" \
    || fail "the new environment cannot import merit, espnet2 and s3prl"
echo "${want_hash}" > "${stamp}"
echo "install.sh: done in $(( $(date +%s) - start )) s: ${venv}" >&2
