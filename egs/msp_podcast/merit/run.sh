#!/usr/bin/env bash
# MSP-Podcast (1.11 or later) with WavLM Large: the paper's experiment. Set
# MSP_PODCAST and the noise corpora in db.sh (egs/TEMPLATE/merit/db.sh), then
#   ./run.sh --stage 1 --stop_stage 6                          # Sparse MERIT, one seed
#   ./run.sh --systems "sparse_merit dense_merit naive_mtl ser_only se_only cascade" --seeds "1 2 3"
# See README.md for hardware, time and disk; ./merit.sh --help for every option.
set -euo pipefail
. ./db.sh

# Options of this script, given first: ./run.sh --classes A,S,H,U,F,D,C,N [merit.sh options]
classes=A,S,H,N     # EmoClass codes kept (the 8-class setup: A,S,H,U,F,D,C,N)
skip_missing=false  # skip listed audio that is missing or unreadable, instead of stopping
while [ $# -ge 2 ]; do
    case "$1" in
        --classes) classes=$2 ;;
        --skip_missing) skip_missing=$2 ;;
        *) break ;;
    esac
    shift 2
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

./merit.sh \
    --ngpu "${ngpu}" \
    --nj "${nj}" \
    --train_set "${train_set}" \
    --valid_set "${valid_set}" \
    --test_sets "${test_sets}" \
    --local_data_opts "--classes ${classes} --skip_missing ${skip_missing}${tag:+ --suffix ${tag}}" \
    --upstream wavlm_large \
    --train_config conf/train.yaml \
    --emotion_classes "${classes}" \
    --exp_suffix "${tag}" \
    "$@"
