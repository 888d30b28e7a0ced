# Activates merit's Python environment. Source it; do not run it.
#
#     . tools/activate_python.sh
#
# Uses $MERIT_VENV when set, else tools/venv. An environment created by
# tools/install.sh is (re)installed first when incomplete or when the pins changed
# (install.sh returns in well under a second when nothing needs doing).
# To use an environment of your own that already has the dependencies (a conda
# env, a venv), set MERIT_VENV to its directory (the one holding bin/activate):
# it is activated as is and never modified.

_merit_tools=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
_merit_venv=${MERIT_VENV:-${_merit_tools}/venv}

if [ ! -f "${_merit_venv}/bin/activate" ] || [ -e "${_merit_venv}/.merit_managed" ]; then
    "${_merit_tools}/install.sh" "${_merit_venv}" || {
        echo "activate_python.sh: could not set up ${_merit_venv} (see the messages above)" >&2
        unset _merit_tools _merit_venv
        return 1
    }
fi
# shellcheck disable=SC1091
. "${_merit_venv}/bin/activate"
unset _merit_tools _merit_venv
