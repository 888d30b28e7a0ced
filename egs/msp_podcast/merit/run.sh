#!/usr/bin/env bash
# MSP-Podcast (1.11 or later) with WavLM Large: the paper's experiment. Set
# MSP_PODCAST and the noise corpora in db.sh (egs/TEMPLATE/merit/db.sh), then
#   ./run.sh --stage 1 --stop_stage 6                          # Sparse MERIT, one seed
#   ./run.sh --systems "sparse_merit dense_merit naive_mtl ser_only se_only cascade" --seeds "1 2 3"
# See README.md for hardware, time and disk; ./run.sh --help for every option.
set -euo pipefail
. ./db.sh

# Options of this script, anywhere among merit.sh's. They reach stage 1
# (local/data.sh) as plain words of --local_data_opts, unquoted, so no value here may
# hold a space (lists are comma-separated).
classes=A,S,H,N       # EmoClass codes kept (the 8-class setup: A,S,H,U,F,D,C,N)
skip_missing=false    # skip listed audio that is missing, unreadable or truncated, instead of stopping
min_duration=0.5      # seconds; shorter utterances are out of bounds
max_duration=30       # seconds; longer utterances are out of bounds
duration_action=stop  # out-of-bounds utterances: stop (naming them), skip (counted) or warn (kept)
skip_bad_noise=false  # leave out unusable (unreadable, silent, short) noise files instead of stopping (prep_noise.sh --skip_bad)
min_noise_seconds=""  # shorter noise files are unusable ("" = prep_noise.sh's, 1 s)
silence_dbfs=""       # noise files with a lower RMS are silent ("" = prep_noise.sh's, -80)
seen_noise=""         # seen noise corpora, comma-separated (default: prep_noise.sh's, crss,freesound)
unseen_noise=""       # unseen noise corpora, comma-separated (default: prep_noise.sh's, dns)
local_data_opts=""    # more options for local/data.sh, appended to the ones above

help_message=$(cat << EOF
Usage: $0 [options]    (this script's options may come anywhere among merit.sh's)

Options of this recipe (defaults in brackets):
  --classes         # EmoClass codes kept, e.g. A,S,H,U,F,D,C,N; other sets get their own data and exp names (${classes})
  --skip_missing    # skip listed audio that is missing, unreadable or truncated, instead of stopping (${skip_missing})
  --min_duration    # seconds; shorter utterances are out of bounds (${min_duration})
  --max_duration    # seconds; longer utterances are out of bounds (${max_duration})
  --duration_action # out-of-bounds utterances: stop, skip or warn (${duration_action})
  --skip_bad_noise  # leave out unusable (unreadable, silent, too short) noise files instead of stopping (${skip_bad_noise})
  --min_noise_seconds # shorter noise files are unusable ("${min_noise_seconds}" = prep_noise.sh's)
  --silence_dbfs    # noise files with a lower RMS (dBFS) are silent, hence unusable ("${silence_dbfs}" = prep_noise.sh's)
  --seen_noise      # seen noise corpora, comma-separated, e.g. crss,musan ("${seen_noise}" = crss,freesound)
  --unseen_noise    # unseen noise corpora, comma-separated, e.g. dns ("${unseen_noise}" = dns)
  --local_data_opts # more options for local/data.sh (local/data.sh --help), added to these

Options of merit.sh, with this recipe's defaults for --ngpu 1, --nj 8, --upstream
wavlm_large, --train_config conf/train.yaml and the set names:
EOF
)

# Take this script's options out wherever they are; everything else goes to merit.sh
# in its order. merit.sh's options all take a value, so they are passed on in pairs:
# a value that looks like one of ours (--train_args "--classes x") stays theirs.
passed=()
while [ $# -gt 0 ]; do
    name=${1#--}
    name=${name//-/_}
    case "$1" in
        --help|-h)
            printf '%s\n' "${help_message}" >&2
            exec ./merit.sh --help
            ;;
        --classes|--skip[_-]missing|--min[_-]duration|--max[_-]duration|--duration[_-]action \
            |--skip[_-]bad[_-]noise|--min[_-]noise[_-]seconds|--silence[_-]dbfs|--seen[_-]noise \
            |--unseen[_-]noise|--local[_-]data[_-]opts)
            [ $# -ge 2 ] || { echo "$0: option '$1' needs a value" >&2; exit 2; }
            printf -v "${name}" '%s' "$2"
            shift 2
            ;;
        --*)
            passed+=("$1")
            [ $# -lt 2 ] || passed+=("$2")
            shift $(( $# < 2 ? 1 : 2 ))
            ;;
        *)
            passed+=("$1")
            shift
            ;;
    esac
done
for name in skip_missing skip_bad_noise; do
    case "${!name}" in true|false) ;; *)
        echo "$0: option '--${name}' is boolean: expected true or false, got '${!name}'" >&2; exit 2 ;;
    esac
done
for name in classes min_duration max_duration duration_action seen_noise unseen_noise \
        min_noise_seconds silence_dbfs; do
    [[ "${!name}" != *[[:space:]]* ]] || {
        echo "$0: --${name} '${!name}' holds whitespace; separate list items by commas" >&2; exit 2; }
done

# Other class sets get their own data, features and experiments: train_ASHUFDCN, ...
tag=""
[ "${classes}" = A,S,H,N ] || tag=_${classes//,/}
ngpu=1            # GPUs per training job
nj=8              # parallel jobs for noise simulation, feature dumping, decoding, scoring
train_set=train${tag}
valid_set=dev${tag}
test_sets="test1${tag} test2${tag}"
# Test3 when the release's labels include it
if [ -n "${MSP_PODCAST}" ] && grep -q ",Test3" "${MSP_PODCAST}/Labels/labels_consensus.csv" 2>/dev/null; then
    test_sets+=" test3${tag}"
fi
data_opts="--classes ${classes} --skip_missing ${skip_missing} --min_duration ${min_duration}"
data_opts+=" --max_duration ${max_duration} --duration_action ${duration_action}"
data_opts+=" --skip_bad_noise ${skip_bad_noise}${tag:+ --suffix ${tag}}"
data_opts+="${seen_noise:+ --seen_noise ${seen_noise}}${unseen_noise:+ --unseen_noise ${unseen_noise}}"
data_opts+="${min_noise_seconds:+ --min_noise_seconds ${min_noise_seconds}}"
data_opts+="${silence_dbfs:+ --silence_dbfs ${silence_dbfs}}"
data_opts+="${local_data_opts:+ ${local_data_opts}}"

./merit.sh \
    --ngpu "${ngpu}" \
    --nj "${nj}" \
    --train_set "${train_set}" \
    --valid_set "${valid_set}" \
    --test_sets "${test_sets}" \
    --local_data_opts "${data_opts}" \
    --upstream wavlm_large \
    --train_config conf/train.yaml \
    --emotion_classes "${classes}" \
    --exp_suffix "${tag}" \
    ${passed[@]+"${passed[@]}"}
