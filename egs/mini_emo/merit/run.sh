#!/usr/bin/env bash
# The mini_emo recipe: the whole pipeline on the small corpus shipped in downloads/.
# See README.md; ./merit.sh --help lists every option.
set -euo pipefail

train_set=train
valid_set=dev
test_sets="test1"
nj=2

./merit.sh \
    --nj "${nj}" \
    --train_set "${train_set}" \
    --valid_set "${valid_set}" \
    --test_sets "${test_sets}" \
    --local_data_opts "--nj ${nj}" \
    "$@"
