#!/usr/bin/env bash
# The stages of a merit recipe. Every corpus's run.sh calls this script with its
# own options; run it from the recipe directory (egs/<corpus>/merit).
#
#   1. data prep            local/data.sh → data/<set> (clean speech + utt2emo)
#   2. noise simulation     noisy mixtures per set
#   3. SSL feature dumping  dump/<upstream>/<set>/feats.scp
#   4. training             exp/<system>/
#   5. decoding             exp/<system>/decode_<set>/
#   6. scoring              scores.json, RESULTS.md
set -euo pipefail

log() {
    local fname=${BASH_SOURCE[1]##*/}
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*" >&2
}

# General
stage=1              # first stage to run
stop_stage=10000     # last stage to run
nj=4                 # parallel jobs for data stages
ngpu=0               # GPUs for training and decoding (0: CPU)
skip_data_prep=false # skip stages 1-3
skip_train=false     # skip stage 4
skip_eval=false      # skip stages 5-6

# Data
local_data_opts=""   # options passed to local/data.sh
train_set=train      # training set name under data/
valid_set=dev        # validation set name under data/
test_sets=""         # space-separated test set names under data/

# Noise simulation (stage 2)
noise_pools=data/noise        # {train,dev,test_seen,test_unseen}.scp: <noise-id> <path>
train_snrs="-5 0 5 10"        # SNRs (dB) drawn per utterance for train and dev
test_snrs="-5 0 5 10"         # one test set per SNR (dB) ...
test_conditions="seen unseen" # ... and per noise condition
sim_seed=1                    # seed of every random choice in the simulation
audio_dump=dump/audio         # where the simulated wavs go

help_message=$(cat << EOF
Usage: $0 [options]

Options (defaults in brackets):
  --stage           # first stage to run (${stage})
  --stop_stage      # last stage to run (${stop_stage})
  --nj              # parallel jobs for data stages (${nj})
  --ngpu            # GPUs for training and decoding, 0 = CPU (${ngpu})
  --skip_data_prep  # skip stages 1-3: data prep, noise, SSL dump (${skip_data_prep})
  --skip_train      # skip stage 4: training (${skip_train})
  --skip_eval       # skip stages 5-6: decoding, scoring (${skip_eval})
  --local_data_opts # options for local/data.sh ("${local_data_opts}")
  --train_set       # training set under data/ (${train_set})
  --valid_set       # validation set under data/ (${valid_set})
  --test_sets       # test sets under data/ ("${test_sets}")
  --noise_pools     # dir with {train,dev,test_seen,test_unseen}.scp noise lists (${noise_pools})
  --train_snrs      # SNRs in dB drawn for train/dev mixtures ("${train_snrs}")
  --test_snrs       # one test set per SNR in dB ("${test_snrs}")
  --test_conditions # noise conditions of the test sets ("${test_conditions}")
  --sim_seed        # seed of the noise simulation (${sim_seed})
  --audio_dump      # where simulated audio goes (${audio_dump})
  --config FILE     # read options from FILE (name=value lines)
  --help            # print this message

Stages: 1 data prep, 2 noise simulation, 3 SSL feature dumping, 4 training,
        5 decoding, 6 scoring.
EOF
)

log "$0 $*"
. utils/parse_options.sh

if [ $# -ne 0 ]; then
    log "Error: unexpected arguments: $*"
    echo "${help_message}" >&2
    exit 2
fi
for n in stage stop_stage nj ngpu; do
    [[ "${!n}" =~ ^[0-9]+$ ]] || { log "Error: --${n} must be a non-negative integer, got '${!n}'"; exit 2; }
done

. ./path.sh
. ./cmd.sh

stage_not_built() {
    log "Error: stage $1 ($2) is not part of this version of merit yet."
    log "Stop before it with --stop_stage $(( $1 - 1 ))."
    exit 1
}

stage_data_prep() {
    [ -x local/data.sh ] || { log "Error: local/data.sh is missing or not executable in ${PWD}"; exit 1; }
    # shellcheck disable=SC2086
    local/data.sh ${local_data_opts}
    local dset
    for dset in "${train_set}" "${valid_set}" ${test_sets}; do
        utils/validate_data_dir.sh --check-audio "data/${dset}"
    done
}

# simulate_set <clean set> <noisy set> <pool> <category> <snrs>
simulate_set() {
    local clean=$1 noisy=$2 pool=$3 category=$4 snrs=$5
    local logdir=${audio_dump}/${noisy}/log
    local opts=(--clean_dir "data/${clean}" --noise "${noise_pools}/${pool}.scp"
                --category "${category}" --snrs "${snrs}" --out_dir "data/${noisy}"
                --audio_dir "${audio_dump}/${noisy}" --seed "${sim_seed}" --num_jobs "${nj}")
    [ -f "${noise_pools}/${pool}.scp" ] || { log "Error: noise pool ${noise_pools}/${pool}.scp is missing"; exit 1; }
    log "Simulating data/${noisy} from data/${clean} (logs: ${logdir}/simulate_noise.*.log)"
    # shellcheck disable=SC2154
    ${train_cmd} JOB=1:"${nj}" "${logdir}/simulate_noise.JOB.log" \
        python3 -m merit.bin.simulate_noise "${opts[@]}" --job JOB
    python3 -m merit.bin.simulate_noise "${opts[@]}" --merge true
    utils/validate_data_dir.sh --check-audio "data/${noisy}" > /dev/null
}

stage_noise_simulation() {
    local dset snr cond
    simulate_set "${train_set}" "${train_set}_noisy" train seen "${train_snrs}"
    simulate_set "${valid_set}" "${valid_set}_noisy" dev seen "${train_snrs}"
    for dset in ${test_sets}; do
        for cond in ${test_conditions}; do
            for snr in ${test_snrs}; do
                simulate_set "${dset}" "${dset}_snr${snr}_${cond}" "test_${cond}" "${cond}" "${snr}"
            done
        done
    done
}
stage_dump_ssl() { stage_not_built 3 "SSL feature dumping"; }
stage_train() { stage_not_built 4 "training"; }
stage_decode() { stage_not_built 5 "decoding"; }
stage_score() { stage_not_built 6 "scoring"; }

# run_stage <number> <description> <skip flag value> <function>
run_stage() {
    local number=$1 description=$2 skip=$3 body=$4 start
    if [ "${number}" -lt "${stage}" ] || [ "${number}" -gt "${stop_stage}" ]; then
        return 0
    fi
    if [ "${skip}" = true ]; then
        log "Stage ${number}: ${description}: skipped (--skip_* flag)"
        return 0
    fi
    start=${SECONDS}
    log "Stage ${number}: ${description}"
    "${body}"
    log "Stage ${number}: ${description}: done in $(( SECONDS - start )) s"
}

total_start=${SECONDS}
run_stage 1 "Data preparation" "${skip_data_prep}" stage_data_prep
run_stage 2 "Noise simulation" "${skip_data_prep}" stage_noise_simulation
run_stage 3 "SSL feature dumping" "${skip_data_prep}" stage_dump_ssl
run_stage 4 "Training" "${skip_train}" stage_train
run_stage 5 "Decoding" "${skip_eval}" stage_decode
run_stage 6 "Scoring" "${skip_eval}" stage_score
log "Successfully finished in $(( SECONDS - total_start )) s"
