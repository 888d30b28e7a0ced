#!/usr/bin/env bash
# The mini_emo recipe: the whole pipeline on the small corpus shipped in downloads/.
# See README.md; ./merit.sh --help lists every option. The paper's comparison:
#   ./run.sh --systems "sparse_merit dense_merit naive_mtl ser_only se_only cascade" --seeds "1 2 3"
set -euo pipefail

train_set=train
valid_set=dev
test_sets="test1"
nj=2
parallel_runs=2  # two runs of the matrix at once: each training is one single-thread process

./merit.sh \
    --nj "${nj}" \
    --parallel_runs "${parallel_runs}" \
    --train_set "${train_set}" \
    --valid_set "${valid_set}" \
    --test_sets "${test_sets}" \
    --local_data_opts "--nj ${nj}" \
    "$@"
