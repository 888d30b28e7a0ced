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

# SSL features (stage 3)
ssl_mode=dumped      # dumped: stage 3 dumps features; online: the model computes them
upstream=fbank       # s3prl upstream (wavlm_large, fbank, wavlm_local, ...)
upstream_ckpt=""     # checkpoint for *_local upstreams
layers=""            # hidden states to keep, e.g. 0,6,12 (default: all)
dump_dtype=float16   # float16 or float32
dumpdir=dump         # dumped features go to ${dumpdir}/${upstream}/<set>

# Training (stage 4)
train_config=conf/train_sparse_merit.yaml
system_tag=""        # experiment name; default <config name>_<upstream>
train_args=""        # extra options for merit.bin.merit_train
expdir=exp
inference_model=valid.macro_f1.best.pth  # checkpoint used by stage 5

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
  --ssl_mode        # dumped (stage 3 dumps features) or online (${ssl_mode})
  --upstream        # s3prl upstream (${upstream})
  --upstream_ckpt   # checkpoint for *_local upstreams ("${upstream_ckpt}")
  --layers          # hidden states to keep, e.g. 0,6,12 ("${layers}" = all)
  --dump_dtype      # float16 or float32 (${dump_dtype})
  --dumpdir         # features go to <dumpdir>/<upstream>/<set> (${dumpdir})
  --train_config    # training config (${train_config})
  --system_tag      # experiment name ("${system_tag}" = <config name>_<upstream>)
  --train_args      # extra options for merit.bin.merit_train ("${train_args}")
  --expdir          # where experiments go (${expdir})
  --inference_model # checkpoint decoded in stage 5 (${inference_model})
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

# The simulated sets every later stage uses.
train_sim=${train_set}_noisy
valid_sim=${valid_set}_noisy
test_sims=""
for dset in ${test_sets}; do
    for cond in ${test_conditions}; do
        for snr in ${test_snrs}; do
            test_sims+=" ${dset}_snr${snr}_${cond}"
        done
    done
done
if [ -z "${system_tag}" ]; then
    system_tag=$(basename "${train_config}" .yaml)
    system_tag=${system_tag#train_}_${upstream}
fi
exp=${expdir}/${system_tag}
feats_dir=${dumpdir}/${upstream}

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
    simulate_set "${train_set}" "${train_sim}" train seen "${train_snrs}"
    simulate_set "${valid_set}" "${valid_sim}" dev seen "${train_snrs}"
    for dset in ${test_sets}; do
        for cond in ${test_conditions}; do
            for snr in ${test_snrs}; do
                simulate_set "${dset}" "${dset}_snr${snr}_${cond}" "test_${cond}" "${cond}" "${snr}"
            done
        done
    done
}
stage_dump_ssl() {
    if [ "${ssl_mode}" = online ]; then
        log "ssl_mode=online: the model computes ${upstream} features itself; nothing to dump"
        return 0
    fi
    local dset opts=(--upstream "${upstream}" --dtype "${dump_dtype}" --num_jobs "${nj}"
                     --ngpu "$(( ngpu > 0 ? 1 : 0 ))")
    [ -n "${upstream_ckpt}" ] && opts+=(--upstream_ckpt "${upstream_ckpt}")
    [ -n "${layers}" ] && opts+=(--layers "${layers}")
    # One job set for all sets, so each job loads the upstream once.
    for dset in ${train_sim} ${valid_sim} ${test_sims}; do
        opts+=(--data_dir "data/${dset}" --out_dir "${feats_dir}/${dset}")
    done
    log "Dumping ${upstream} features to ${feats_dir}/ (logs: ${feats_dir}/log/dump.*.log)"
    # shellcheck disable=SC2154
    ${decode_cmd} --gpu "$(( ngpu > 0 ? 1 : 0 ))" JOB=1:"${nj}" "${feats_dir}/log/dump.JOB.log" \
        python3 -m merit.bin.dump_ssl "${opts[@]}" --job JOB
    python3 -m merit.bin.dump_ssl "${opts[@]}" --merge true
}

# frontend_args: how the model gets its SSL features, from --ssl_mode
frontend_args() {
    if [ "${ssl_mode}" = online ]; then
        echo "--frontend s3prl --frontend_conf upstream=${upstream}"
        [ -n "${upstream_ckpt}" ] && echo "--frontend_conf path_or_url=${upstream_ckpt}"
        [ -n "${layers}" ] && echo "--frontend_conf layers=[${layers}]"
    else
        python3 -c 'import sys, yaml; i = yaml.safe_load(open(sys.argv[1]))
print("--frontend dumped --frontend_conf num_layers=%d --frontend_conf hidden_size=%d --frontend_conf downsample_rate=%d --frontend_conf upstream=%s --frontend_conf dumped_layers=[%s]" % (i["num_layers"], i["hidden_size"], i["downsample_rate"], i["upstream"], ",".join(map(str, i["layers"]))))' \
            "${feats_dir}/${train_sim}/feats_info.yaml"
        [ -n "${upstream_ckpt}" ] && echo "--frontend_conf path_or_url=${upstream_ckpt}"
    fi
    return 0
}

# data_args <train|valid> <set>: the data files of a set for merit.bin.merit_train
data_args() {
    local mode=$1 dset=$2
    echo "--${mode}_data_path_and_name_and_type data/${dset}/wav.scp,speech,sound"
    echo "--${mode}_data_path_and_name_and_type data/${dset}/spk1.scp,speech_ref1,sound"
    echo "--${mode}_data_path_and_name_and_type data/${dset}/utt2emo,emotion,text"
    if [ "${ssl_mode}" != online ]; then
        echo "--${mode}_data_path_and_name_and_type ${feats_dir}/${dset}/feats.scp,feats,npy"
    fi
    echo "--${mode}_shape_file data/${dset}/utt2num_samples"
}

stage_train() {
    case "${ssl_mode}" in dumped|online) ;; *) log "Error: --ssl_mode must be dumped or online"; exit 2 ;; esac
    mkdir -p "${exp}"
    local args
    # shellcheck disable=SC2046
    args=$(frontend_args; data_args train "${train_sim}"; data_args valid "${valid_sim}")
    log "Training ${exp} with ${train_config} (log: ${exp}/train.log)"
    # shellcheck disable=SC2086,SC2154
    ${cuda_cmd} --gpu "${ngpu}" "${exp}/train.log" \
        python3 -m merit.bin.merit_train \
            --config "${train_config}" \
            --output_dir "${exp}" \
            --ngpu "${ngpu}" \
            --multiprocessing_distributed "$([ "${ngpu}" -gt 1 ] && echo true || echo false)" \
            --class_weights "data/${train_sim}/utt2emo" \
            --resume true \
            ${args} ${train_args}
    local best
    for best in "${exp}"/*.best.pth; do
        [ -e "${best}" ] && log "Trained: ${best} -> $(readlink "${best}")"
    done
    return 0
}
stage_decode() {
    local dset opts=(--model_dir "${exp}" --checkpoint "${inference_model}" --num_jobs "${nj}"
                     --ngpu "$(( ngpu > 0 ? 1 : 0 ))")
    for dset in ${test_sims}; do
        opts+=(--data_dir "data/${dset}" --out_dir "${exp}/decode_${dset}")
        [ "${ssl_mode}" = online ] || opts+=(--feats_dir "${feats_dir}/${dset}")
    done
    log "Decoding ${test_sims} with ${exp}/${inference_model} (logs: ${exp}/decode_log/decode.*.log)"
    # shellcheck disable=SC2154
    ${decode_cmd} --gpu "$(( ngpu > 0 ? 1 : 0 ))" JOB=1:"${nj}" "${exp}/decode_log/decode.JOB.log" \
        python3 -m merit.bin.merit_inference "${opts[@]}" --job JOB
    python3 -m merit.bin.merit_inference "${opts[@]}" --merge true
}
stage_score() {
    local dset
    for dset in ${test_sims}; do
        python3 -m merit.bin.score --data_dir "data/${dset}" --decode_dir "${exp}/decode_${dset}" \
            --nj "${nj}"
    done
    python3 -m merit.bin.plot_decodes "${exp}"
    python3 -m merit.bin.results_md "${exp}" > "${exp}/RESULTS.md.tmp"
    mv "${exp}/RESULTS.md.tmp" "${exp}/RESULTS.md"
    log "Wrote ${exp}/RESULTS.md; tables of every system in ${expdir}:"
    python3 -m merit.bin.make_tables "${expdir}"/*
}

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
