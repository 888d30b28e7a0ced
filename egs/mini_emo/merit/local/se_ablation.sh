#!/usr/bin/env bash
# The SE ablation of conf/ablation/README.md: se_only and sparse_merit trained, decoded
# and scored with each step's config over conf/train.yaml, then one table per metric
# with a row per system and step (exp/ablation_tables.md). Run from egs/mini_emo/merit
# after stages 1-2 (./run.sh --stop_stage 2); each step dumps the features its models
# read (stage 3: the steps on fixed mixtures). Every run is skipped when already done,
# so a killed ablation is finished by running it again.
set -euo pipefail

steps="se0_paper se1_centres se2_joint se3_dynamic se4_magnitude se5_joint_score"
systems="se_only sparse_merit"
seeds="1 2 3"
parallel_runs=2

help_message="Usage: $0 [--steps \"${steps}\"] [--systems \"${systems}\"] [--seeds \"${seeds}\"] [--parallel_runs ${parallel_runs}]"
. utils/parse_options.sh
[ $# -eq 0 ] || { echo "${help_message}" >&2; exit 2; }

for step in ${steps}; do
    [ -f "conf/ablation/${step}.yaml" ] || { echo "$0: conf/ablation/${step}.yaml not found" >&2; exit 2; }
    ./run.sh --stage 3 --stop_stage 6 --systems "${systems}" --seeds "${seeds}" \
        --parallel_runs "${parallel_runs}" --exp_suffix "_${step}" \
        --train_config "conf/train.yaml conf/ablation/${step}.yaml" --baselines ""
done
. ./path.sh
exps=()
for step in ${steps}; do
    for system in ${systems}; do
        for seed in ${seeds}; do exps+=("exp/${system}_fbank_${step}_seed${seed}"); done
    done
done
python3 -m merit.bin.make_tables "${exps[@]}" > exp/ablation_tables.md
echo "$0: tables in exp/ablation_tables.md" >&2
