#!/usr/bin/env bash
# Command-line options for recipe scripts, in the Kaldi/ESPnet style.
#
# Source it after defining every option as a shell variable with its default:
#
#     nj=4; use_gpu=false; help_message="Usage: $0 [options] <data-dir>"
#     . utils/parse_options.sh || exit 1
#
# Then `--nj 8`, `--use_gpu true` and `--use-gpu true` set those variables, and the
# positional arguments are left in "$@".
#   --config FILE   sources FILE (lines `name=value`), later options override it
#   --help, -h      prints $help_message to stderr and exits 0
# Only variables that already exist can be set, so a misspelt option is an error
# naming it. A variable whose default is true or false only accepts true or false.

_po_script=${0##*/}

_po_die() {
    echo "${_po_script}: $*" >&2
    exit 1
}

while [ $# -gt 0 ]; do
    case "$1" in
        --help|-h)
            if [ -n "${help_message:-}" ]; then
                printf '%s\n' "${help_message}" >&2
            else
                echo "Usage: ${_po_script} [options] (this script documents no options)" >&2
            fi
            exit 0
            ;;
        --config)
            [ $# -ge 2 ] || _po_die "option --config needs a file"
            [ -f "$2" ] || _po_die "config file '$2' does not exist"
            # shellcheck disable=SC1090
            . "$2" || _po_die "config file '$2' failed to load"
            shift 2
            ;;
        --*=*)
            _po_die "write options as '--name value', not '$1'"
            ;;
        --?*)
            _po_name=${1#--}
            _po_name=${_po_name//-/_}
            [[ "${_po_name}" =~ ^[a-zA-Z_][a-zA-Z0-9_]*$ ]] || _po_die "invalid option '$1'"
            [ -n "${!_po_name+set}" ] || _po_die "unknown option '$1' (see --help)"
            [ $# -ge 2 ] || _po_die "option '$1' needs a value"
            _po_old=${!_po_name}
            if { [ "${_po_old}" = true ] || [ "${_po_old}" = false ]; } \
                && [ "$2" != true ] && [ "$2" != false ]; then
                _po_die "option '$1' is boolean: expected true or false, got '$2'"
            fi
            printf -v "${_po_name}" '%s' "$2"
            shift 2
            ;;
        --)
            shift
            break
            ;;
        *)
            break
            ;;
    esac
done

unset _po_name _po_old
true
