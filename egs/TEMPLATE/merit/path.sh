# Environment for a merit recipe; sourced by merit.sh from egs/<corpus>/merit.
MAIN_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
export MAIN_ROOT

# shellcheck disable=SC1091
. "${MAIN_ROOT}/tools/activate_python.sh" || return 1
export PATH=${MAIN_ROOT}/utils:${PATH}
export LC_ALL=C
export PYTHONIOENCODING=UTF-8
# One thread per job: run.pl already runs --nj jobs side by side.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
