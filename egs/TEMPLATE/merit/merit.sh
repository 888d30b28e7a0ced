#!/usr/bin/env bash
# The stages of a merit recipe. Every corpus's run.sh calls this script with its
# own options; run it from the recipe directory (egs/<corpus>/merit).
#
#   1. data prep            local/data.sh → data/<set> (clean speech + utt2emo) and the
#                           noise pools data/noise/*.scp (scripts/prep_noise.sh)
#   2. noise simulation     noisy mixtures per set
#   3. SSL feature dumping  dump/<upstream>/<set>/feats.scp
#   4. training             exp/<system>_<upstream>_seed<N>/ for every system and seed
#   5. decoding             exp/<system>_<upstream>_seed<N>/decode_<set>/
#   6. scoring              scores.json, RESULTS.md, the tables of every system
#
# Stages 2-6 skip what is already complete: a step whose settings and inputs are
# unchanged runs once (markers simulate.done, dump.done, train.done, decode.done,
# score.done hold its settings and a fingerprint of each input: step_key), so an
# interrupted matrix is finished by running it again, and a step whose input an earlier
# stage rewrote is redone, saying which input changed.
set -euo pipefail
shopt -s inherit_errexit  # a failure inside $(...) fails the script too

log() {
    local fname=${BASH_SOURCE[1]##*/}
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*" >&2
}

# General
stage=1              # first stage to run
stop_stage=10000     # last stage to run
nj=4                 # parallel jobs for data stages
ngpu=0               # GPUs for training and decoding (0: CPU)
num_nodes=1          # nodes for training (more than 1: Slurm, ngpu GPUs each)
skip_data_prep=false # skip stages 1-3
skip_train=false     # skip stage 4
skip_eval=false      # skip stages 5-6
force=false          # stages 2, 3 and 5 write even what the disk preflight finds does not fit

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
upstream_ckpt=""     # checkpoint file or URL: for *_local upstreams, or instead of the download of a named one
layers=""            # hidden states to keep, e.g. 0,6,12 (default: all)
dump_dtype=float16   # float16 or float32
dump_test_sets=false # also dump the noisy test sets (default: stage 5 computes their features)
dumpdir=dump         # dumped features go to ${dumpdir}/${upstream}/<set>

# Training (stage 4)
systems="sparse_merit"   # systems to run: conf/systems/<name>.yaml, or cascade
seeds="1"                # one run per seed: exp/<system>_<upstream><exp_suffix>_seed<N>
train_config=conf/train.yaml  # sizes and optimizer; merged with each system's file (several files: merged in order)
emotion_classes=""       # class codes, e.g. A,S,H,N (default: the config's emotion_classes)
exp_suffix=""            # appended to the experiment names, e.g. _finetune
cascade_ser_train=clean  # what the cascade's classifier trains on: clean, noisy or enhanced
train_args=""            # extra options for merit.bin.merit_train
init_from=""             # checkpoint each run starts from; {model} and {seed} are replaced
parallel_runs=1          # runs of the matrix trained, decoded or scored at once
expdir=exp
inference_model=""       # checkpoint decoded in stage 5 (default: from best_model_criterion)
decode_batch_size=60     # stage 5 batches: seconds of padded audio each (0: one utterance at a time)
baselines="cascade naive_mtl"  # systems make_tables compares the others with (if run)
extra_metrics=""         # opt-in SE metrics stage 6 scores too, e.g. "dnsmos_sig dnsmos_bak dnsmos_ovrl"

help_message=$(cat << EOF
Usage: $0 [options]

Options (defaults in brackets):
  --stage           # first stage to run (${stage})
  --stop_stage      # last stage to run (${stop_stage})
  --nj              # parallel jobs for data stages (${nj})
  --ngpu            # GPUs for training and decoding, 0 = CPU (${ngpu})
  --num_nodes       # nodes for training, each with ngpu GPUs; >1 needs slurm (${num_nodes})
  --skip_data_prep  # skip stages 1-3: data prep, noise, SSL dump (${skip_data_prep})
  --skip_train      # skip stage 4: training (${skip_train})
  --skip_eval       # skip stages 5-6: decoding, scoring (${skip_eval})
  --force           # stages 2, 3 and 5 go on when their estimated bytes exceed the free space at --audio_dump / --dumpdir / the exp dirs (${force})
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
  --upstream_ckpt   # checkpoint file or URL; with a named upstream (wavlm_large) it replaces the download ("${upstream_ckpt}")
  --layers          # hidden states to keep, e.g. 0,6,12 ("${layers}" = all)
  --dump_dtype      # float16 or float32 (${dump_dtype})
  --dump_test_sets  # dump the noisy test sets too; by default stage 5 computes their features, with the same results (${dump_test_sets})
  --dumpdir         # features go to <dumpdir>/<upstream>/<set> (${dumpdir})
  --systems         # systems: conf/systems/<name>.yaml or cascade ("${systems}")
  --seeds           # training seeds, one run each ("${seeds}")
  --train_config    # sizes and optimizer, merged with each system; "a.yaml b.yaml": b wins over a (${train_config})
  --emotion_classes # class codes in logit order, e.g. A,S,H,N ("${emotion_classes}" = the config's)
  --exp_suffix      # experiments are <system>_<upstream><suffix>_seed<N> ("${exp_suffix}")
  --cascade_ser_train # cascade classifier trains on clean, noisy or enhanced (${cascade_ser_train})
  --train_args      # extra options for merit.bin.merit_train ("${train_args}")
  --init_from       # start each run from a checkpoint, e.g. exp/{model}_wavlm_large_seed{seed}/valid.macro_f1.best.pth ("${init_from}")
  --parallel_runs   # runs trained/decoded/scored at once, each with nj/parallel_runs jobs (${parallel_runs})
  --expdir          # where experiments go (${expdir})
  --inference_model # checkpoint decoded in stage 5 ("${inference_model}" = from the config)
  --decode_batch_size # stage 5 decodes length-sorted batches of at most this many seconds of padded audio; 0: one utterance at a time (${decode_batch_size})
  --baselines       # make_tables baselines, those among --systems ("${baselines}")
  --extra_metrics   # opt-in SE metrics scored in stage 6: DNSMOS (dnsmos_sig dnsmos_bak dnsmos_ovrl, 7-40x the default metrics' time, more on short utterances) ("${extra_metrics}")
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
for n in stage stop_stage nj ngpu num_nodes parallel_runs; do
    [[ "${!n}" =~ ^[0-9]+$ ]] || { log "Error: --${n} must be a non-negative integer, got '${!n}'"; exit 2; }
done
[ "${parallel_runs}" -ge 1 ] || { log "Error: --parallel_runs must be at least 1"; exit 2; }
# scored_se_metrics: the SE metrics stage 6 scores (the default ones and --extra_metrics),
# by name; an unknown --extra_metrics name is an error that lists the choices
scored_se_metrics() {
    python3 -c 'import sys
from merit.metrics.se import se_metrics
try:
    print(" ".join(m.name for m in se_metrics(sys.argv[1:])))
except ValueError as err:
    sys.exit(f"--extra_metrics: {err}")' ${extra_metrics}
}
metric_args=()
[ -z "${extra_metrics}" ] || metric_args=(--extra_metrics ${extra_metrics})
case "${ssl_mode}" in dumped|online) ;; *) log "Error: --ssl_mode must be dumped or online, got '${ssl_mode}'"; exit 2 ;; esac
case "${cascade_ser_train}" in clean|noisy|enhanced) ;;
    *) log "Error: --cascade_ser_train must be clean, noisy or enhanced, got '${cascade_ser_train}'"; exit 2 ;; esac
for seed in ${seeds}; do
    [[ "${seed}" =~ ^[0-9]+$ ]] || { log "Error: --seeds must be non-negative integers, got '${seed}'"; exit 2; }
done
[ -n "${seeds}" ] || { log "Error: --seeds is empty"; exit 2; }
system_confs=conf/systems
for system in ${systems}; do
    [ "${system}" = cascade ] || [ -f "${system_confs}/${system}.yaml" ] || {
        log "Error: unknown system '${system}': no ${system_confs}/${system}.yaml (or use cascade)"; exit 2; }
done

. ./path.sh
. ./cmd.sh
if [ -n "${extra_metrics}" ] && [ "${stop_stage}" -ge 6 ]; then
    scored_se_metrics > /dev/null || exit 2
fi

# GPUs asked for on this machine (run.pl) must be here: found now, not in a stage-3 job log.
# shellcheck disable=SC2154
if [ "${ngpu}" -gt 0 ] && [ "${cuda_cmd%% *}" = run.pl ] && [ "${stop_stage}" -ge 3 ] &&
        [ "${stage}" -le 5 ]; then
    gpus=$(python3 -c "import torch; print(torch.cuda.device_count())" 2> /dev/null || echo 0)
    if [ "${gpus}" -lt "${ngpu}" ]; then
        log "Error: --ngpu ${ngpu}, but this machine has ${gpus} CUDA device(s) that torch can use"
        log "       (stages 3-5 run here: cmd.sh's cmd_backend=local). Use --ngpu ${gpus} (0 = CPU),"
        log "       or MERIT_CMD_BACKEND=slurm to run the jobs on GPU nodes (conf/slurm.conf)."
        exit 2
    fi
fi

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
feats_dir=${dumpdir}/${upstream}
run_nj=${nj}  # jobs of each run; run_pool shares nj between the runs it runs at once

# The cascade's classifier (a ser_only model, by what it trains on) and the cascade's
# name: cascade (classifier trained on clean speech), cascade_noisy or cascade_enhanced.
case "${cascade_ser_train}" in
    clean) cascade_ser=ser_only_clean; cascade_name=cascade ;;
    noisy) cascade_ser=ser_only; cascade_name=cascade_noisy ;;
    enhanced) cascade_ser=ser_only_enhanced; cascade_name=cascade_enhanced ;;
esac
has_cascade=false
for system in ${systems}; do [ "${system}" = cascade ] && has_cascade=true; done

# exp_dir <model> <seed>
exp_dir() {
    echo "${expdir}/${1}_${upstream}${exp_suffix}_seed${2}"
}

# system_name <system>: its experiments' name (the cascade's says what its classifier learned from)
system_name() {
    if [ "$1" = cascade ]; then echo "${cascade_name}"; else echo "$1"; fi
}

# done_with <marker> <key>: whether <marker> records a step made from <key>
done_with() {
    [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]
}

# A step's key: a settings line, then "<path> <fingerprint>" for each input it reads
# (merit/utils/fingerprint.py: list files' content, listed files' size and mtime), so
# that a step whose input another stage rewrote is redone. Short settings are kept as
# name=value words, so that the log can say which one changed; long ones (a training
# config) as a hash.
# step_key <settings> <input path>...
step_key() {
    local settings=$1
    shift
    if [ "${#settings}" -le 200 ] && [[ "${settings}" != *$'\n'* ]]; then
        echo "settings ${settings}"
    else
        echo "settings $(sha1sum <<< "${settings}" | cut -c1-16)"
    fi
    [ $# -eq 0 ] || python3 -m merit.utils.fingerprint "$@"
}

# changed_since <marker> <key>: why the step <marker> records must be redone for <key>:
# the settings that differ (name=new (was old)) and the inputs whose fingerprint changed
changed_since() {
    [ -f "$1" ] || { echo "not done before"; return 0; }
    local line word old was what=()
    old=$(grep -m1 '^settings ' "$1" || true)
    while IFS= read -r line; do
        grep -qxF -- "${line}" "$1" && continue
        if [[ "${line}" == "settings "* ]]; then
            for word in ${line#settings }; do
                [[ " ${old#settings } " == *" ${word} "* ]] && continue
                [[ "${word}" == *=* ]] || { what+=("settings"); continue; }  # a hash
                was=$(tr ' ' '\n' <<< "${old#settings }" | grep -m1 -F -- "${word%%=*}=" || true)
                what+=("${word}${was:+ (was ${was#*=})}")
            done
            [ ${#what[@]} -gt 0 ] || what+=("settings")
        else
            what+=("${line%% *}")
        fi
    done <<< "$2"
    local joined="" item
    for item in "${what[@]}"; do joined+="${joined:+, }${item}"; done
    echo "changed since the last run: ${joined:-the recorded key}"
}

# mark_done <marker> <key>
mark_done() {
    echo "$2" > "$1.tmp"
    mv "$1.tmp" "$1"
}

# run_pool <function> <item>...: "<function> <item>" for every item, parallel_runs at
# a time, each with nj / (runs at once) jobs (path.sh: one thread per job); fails
# (after all have ended) if any failed.
run_pool() {
    local fn=$1 item pid failed=0 at_once
    shift
    at_once=$(( $# < parallel_runs ? $# : parallel_runs ))
    run_nj=$(( at_once > 0 && nj / at_once > 0 ? nj / at_once : 1 ))
    if [ "${at_once}" -le 1 ]; then
        for item in "$@"; do "${fn}" "${item}"; done
        return 0
    fi
    local pids=()
    for item in "$@"; do
        # its own runs (stage 4's reference scores may run beside them: stage_train)
        while [ "$(jobs -rp | grep -cvx "${references_pid:-none}")" -ge "${parallel_runs}" ]; do sleep 1; done
        "${fn}" "${item}" &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do
        wait "${pid}" || failed=$(( failed + 1 ))
    done
    [ "${failed}" -eq 0 ] || { log "Error: ${failed} of $# runs of ${fn} failed (their logs are above)"; exit 1; }
}

# derive_set <noisy set dir> <new dir> <wav.scp>: the set's labels and references with
# other audio (the clean speech, or an enhancer's output) as its wav.scp
derive_set() {
    local src=$1 dst=$2 wav=$3 f
    rm -rf "${dst}.tmp"
    mkdir -p "${dst}.tmp"
    for f in utt2spk spk2utt utt2emo utt2num_samples spk1.scp utt2snr utt2category; do
        [ -f "${src}/${f}" ] && cp "${src}/${f}" "${dst}.tmp/${f}"
    done
    cp "${wav}" "${dst}.tmp/wav.scp"
    rm -rf "${dst}"
    mv "${dst}.tmp" "${dst}"
}

# dump_features <log dir> <jobs> <data dir> <out dir> [<data dir> <out dir> ...]:
# one job set for all pairs, so each job loads the upstream once
dump_features() {
    local logdir=$1 jobs=$2 opts=(--upstream "${upstream}" --dtype "${dump_dtype}"
                                  --ngpu "$(( ngpu > 0 ? 1 : 0 ))")
    shift 2
    [ -n "${upstream_ckpt}" ] && opts+=(--upstream_ckpt "${upstream_ckpt}")
    [ -n "${layers}" ] && opts+=(--layers "${layers}")
    while [ $# -gt 0 ]; do
        opts+=(--data_dir "$1" --out_dir "$2")
        shift 2
    done
    opts+=(--num_jobs "${jobs}")
    log "Dumping ${upstream} features (logs: ${logdir}/dump.*.log)"
    # shellcheck disable=SC2154
    ${decode_cmd} --gpu "$(( ngpu > 0 ? 1 : 0 ))" JOB=1:"${jobs}" "${logdir}/dump.JOB.log" \
        python3 -m merit.bin.dump_ssl "${opts[@]}" --job JOB
    python3 -m merit.bin.dump_ssl "${opts[@]}" --merge true
}

stage_data_prep() {
    [ -x local/data.sh ] || { log "Error: local/data.sh is missing or not executable in ${PWD}"; exit 1; }
    # Split like a command line, so that quoted values keep their spaces:
    # --local_data_opts "--noise_opts '--skip_bad true'"
    local opts=()
    eval "opts=(${local_data_opts})"
    local/data.sh "${opts[@]}"
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
    [ -f "${noise_pools}/${pool}.scp" ] || {
        log "Error: noise pool ${noise_pools}/${pool}.scp is missing: local/data.sh builds the pools with"
        log "       scripts/prep_noise.sh (egs/TEMPLATE/merit/README.md), or point --noise_pools at them"; exit 1; }
    local key marker=data/${noisy}/simulate.done
    key=$(step_key "category=${category} snrs=${snrs// /,} sim_seed=${sim_seed} audio_dump=${audio_dump}" \
              "data/${clean}" "${noise_pools}/${pool}.scp")
    if done_with "${marker}" "${key}"; then
        log "Simulating data/${noisy}: already complete, skipped"
        return 0
    fi
    log "Simulating data/${noisy} from data/${clean}, $(changed_since "${marker}" "${key}") (logs: ${logdir}/simulate_noise.*.log)"
    # shellcheck disable=SC2154
    ${train_cmd} JOB=1:"${nj}" "${logdir}/simulate_noise.JOB.log" \
        python3 -m merit.bin.simulate_noise "${opts[@]}" --job JOB
    python3 -m merit.bin.simulate_noise "${opts[@]}" --merge true
    utils/validate_data_dir.sh --check-audio "data/${noisy}" > /dev/null
    mark_done "${marker}" "${key}"
}

# noise_sets <function>: "<function> <clean set> <noisy set> <pool> <category> <snrs>" for
# every set stage 2 simulates
noise_sets() {
    local fn=$1 dset snr cond
    "${fn}" "${train_set}" "${train_sim}" train seen "${train_snrs}"
    "${fn}" "${valid_set}" "${valid_sim}" dev seen "${train_snrs}"
    for dset in ${test_sets}; do
        for cond in ${test_conditions}; do
            for snr in ${test_snrs}; do
                "${fn}" "${dset}" "${dset}_snr${snr}_${cond}" "test_${cond}" "${cond}" "${snr}"
            done
        done
    done
}

# audio_pair <clean set> <noisy set> ...: the data dir and audio dir of a simulated set,
# one a line
audio_pair() {
    printf '%s\n' "data/$1" "${audio_dump}/$2"
}

stage_noise_simulation() {
    # Before anything is written: the WAVs of every set against the free space
    local pairs=()
    mapfile -t pairs < <(noise_sets audio_pair)
    python3 -m merit.bin.disk_preflight audio --target "${audio_dump}" --force "${force}" "${pairs[@]}"
    noise_sets simulate_set
}
# compose_system <system> <out> [--set key=value ...]: --train_config merged with the
# system's file, as stage 4 trains it
compose_system() {
    local system=$1 out=$2
    shift 2
    # shellcheck disable=SC2086  # --train_config may list several files
    python3 -m merit.bin.compose_config ${train_config} "${system_confs}/${system}.yaml" "$@" \
        --out "${out}"
}

# mixes_online <system>: whether stage 4 trains <system> with dynamic mixing, so that it
# reads no dumped features
mixes_online() {
    local merged status=0
    merged=$(mktemp)
    compose_system "$1" "${merged}"
    grep -qx 'dynamic_mixing: true' "${merged}" || status=1
    rm -f "${merged}"
    return "${status}"
}

stage_dump_ssl() {
    local dset pairs=() model seed reads_dumps=false
    # The noisy sets are dumped for the models that read them: those trained on stage 2's
    # fixed mixtures (a dynamically mixed one computes its features, in training and in
    # decoding). A cascade's classifier learns from clean or enhanced speech, never re-mixed.
    while read -r model seed; do
        case "${model}" in *_clean|*_enhanced) continue ;; esac
        mixes_online "${model}" || reads_dumps=true
    done < <(matrix_models train | awk '!seen[$1]++')
    if [ "${reads_dumps}" = true ]; then
        # Training reads the training and validation sets; stage 5 computes the test
        # sets' features itself unless --dump_test_sets true (the same numbers either way).
        for dset in ${train_sim} ${valid_sim}; do
            pairs+=("data/${dset}" "${feats_dir}/${dset}")
        done
        if [ "${dump_test_sets}" = true ]; then
            for dset in ${test_sims}; do
                pairs+=("data/${dset}" "${feats_dir}/${dset}")
            done
        fi
    else
        log "Every model of --systems \"${systems}\" trains with dynamic_mixing: true and computes its features: the noisy sets are not dumped"
    fi
    if [ "${has_cascade}" = true ] && [ "${cascade_ser_train}" = clean ]; then
        # The cascade's classifier learns from the clean speech of the training mixtures.
        derive_set "data/${train_sim}" "data/${train_set}_clean" "data/${train_sim}/spk1.scp"
        derive_set "data/${valid_sim}" "data/${valid_set}_clean" "data/${valid_sim}/spk1.scp"
        pairs+=("data/${train_set}_clean" "${feats_dir}/${train_set}_clean"
                "data/${valid_set}_clean" "${feats_dir}/${valid_set}_clean")
    fi
    if [ "${ssl_mode}" = online ]; then
        log "ssl_mode=online: the model computes ${upstream} features itself; nothing to dump"
        return 0
    fi
    [ ${#pairs[@]} -gt 0 ] || return 0
    # Before any feature is written: the features of every set against the free space
    preflight_feats feats "${feats_dir}" "${pairs[@]}"
    dump_changed "${feats_dir}/log" "${nj}" "${pairs[@]}"
}

# preflight_feats <kind> <target> <data dir> <out dir> ...: merit.bin.disk_preflight of
# the features dump_changed writes for the pairs, its report on stderr
preflight_feats() {
    local kind=$1 target=$2
    local opts=(--upstream "${upstream}" --dtype "${dump_dtype}" --force "${force}")
    shift 2
    [ -n "${upstream_ckpt}" ] && opts+=(--upstream_ckpt "${upstream_ckpt}")
    [ -n "${layers}" ] && opts+=(--layers "${layers}")
    python3 -m merit.bin.disk_preflight "${kind}" --target "${target}" "${opts[@]}" "$@" >&2
}

# dump_changed <log dir> <jobs> <data dir> <out dir> ...: dump_features for the pairs whose
# dump is missing or was made from other audio or settings (each out dir's dump.done)
dump_changed() {
    local logdir=$1 jobs=$2 keys=() todo=() key i
    shift 2
    while [ $# -gt 0 ]; do
        key=$(step_key "upstream=${upstream} upstream_ckpt=${upstream_ckpt} layers=${layers} dtype=${dump_dtype}" "$1")
        if done_with "$2/dump.done" "${key}" && [ -f "$2/feats.scp" ]; then
            log "Dumping $2: already complete, skipped"
        else
            log "Dumping $2 from $1: $(changed_since "$2/dump.done" "${key}")"
            todo+=("$1" "$2")
            keys+=("${key}")
        fi
        shift 2
    done
    [ ${#todo[@]} -gt 0 ] || return 0
    dump_features "${logdir}" "${jobs}" "${todo[@]}"
    for i in "${!keys[@]}"; do
        mark_done "${todo[2 * i + 1]}/dump.done" "${keys[i]}"
    done
}

# frontend_args <feats dir>: how the model gets its SSL features, from --ssl_mode
frontend_args() {
    if [ "${ssl_mode}" = online ]; then
        echo "--frontend s3prl --frontend_conf upstream=${upstream}"
        [ -n "${upstream_ckpt}" ] && echo "--frontend_conf path_or_url=${upstream_ckpt}"
        [ -n "${layers}" ] && echo "--frontend_conf layers=[${layers}]"
    else
        echo "--frontend dumped --frontend_conf feats_info=$1/feats_info.yaml"
        [ -n "${upstream_ckpt}" ] && echo "--frontend_conf path_or_url=${upstream_ckpt}"
    fi
    return 0
}

# data_args <train|valid> <data dir> <feats dir>: a set's files for merit.bin.merit_train;
# dumped features are ark shards (kaldi_ark), or one .npy per utterance in a dump made
# before them (npy), as its feats.scp says
data_args() {
    local mode=$1 data=$2 feats=$3 type=kaldi_ark
    echo "--${mode}_data_path_and_name_and_type ${data}/wav.scp,speech,sound"
    echo "--${mode}_data_path_and_name_and_type ${data}/spk1.scp,speech_ref1,sound"
    echo "--${mode}_data_path_and_name_and_type ${data}/utt2emo,emotion,text"
    if [ "${ssl_mode}" != online ]; then
        case $(head -n 1 "${feats}/feats.scp" 2>/dev/null) in *.npy) type=npy ;; esac
        echo "--${mode}_data_path_and_name_and_type ${feats}/feats.scp,feats,${type}"
    fi
    echo "--${mode}_shape_file ${data}/utt2num_samples"
}

# train_model <model> <seed> <train data> <train feats> <valid data> <valid feats> [<input key>]:
# trains exp_dir <model> <seed> from conf/systems/<system>.yaml merged into
# ${train_config}, unless it is already trained with the same settings (and, for data
# another model made, the same <input key>: that model's)
train_model() {
    local model=$1 seed=$2 tr_data=$3 tr_feats=$4 cv_data=$5 cv_feats=$6 input_key=${7:-} exp args key
    local system=${model%_clean}
    system=${system%_enhanced}
    exp=$(exp_dir "${model}" "${seed}")
    mkdir -p "${exp}"
    local sets=(--set "seed=${seed}")
    [ -n "${emotion_classes}" ] && sets+=(--set "emotion_classes=${emotion_classes}")
    compose_system "${system}" "${exp}/train_config.yaml.new" "${sets[@]}"
    # dynamic_mixing: true re-mixes the training speech with the train noise pool, so the
    # run reads no dumped features (frontend_args and data_args see this ssl_mode) and the
    # pool is one of its inputs. Clean or enhanced training speech is no mixture to redo.
    local ssl_mode=${ssl_mode} mixing="" snr_list inputs
    inputs=("${tr_data}" "${tr_feats}" "${cv_data}" "${cv_feats}")
    if grep -qx 'dynamic_mixing: true' "${exp}/train_config.yaml.new"; then
        if [ "${model}" != "${system}" ]; then
            log "${exp}: trains on ${tr_data}, not on stage 2's mixtures: dynamic mixing off for this run"
            mixing="--dynamic_mixing false"
        else
            [ "${ssl_mode}" = online ] || log "${exp}: dynamic_mixing: true: ${upstream} features computed online (--frontend s3prl), not dumped (--ssl_mode ${ssl_mode})"
            ssl_mode=online
            # shellcheck disable=SC2086
            snr_list=$(printf '%s,' ${train_snrs})
            mixing="--dynamic_mixing_conf noise_scp=${noise_pools}/train.scp --dynamic_mixing_conf snrs=[${snr_list%,}]"
            inputs=("${tr_data}" "${cv_data}" "${noise_pools}/train.scp")
        fi
    fi
    # shellcheck disable=SC2046
    args=$(frontend_args "${tr_feats}"; data_args train "${tr_data}" "${tr_feats}"
           data_args valid "${cv_data}" "${cv_feats}"; echo "${mixing}")
    if [ -n "${init_from}" ]; then  # e.g. phase 2 (fine-tuning) from phase 1's model
        local init=${init_from//\{model\}/${model}}
        init=${init//\{seed\}/${seed}}
        [ -f "${init}" ] || { log "Error: --init_from: ${init} does not exist (train that model first)"; exit 1; }
        args+=" --init_param ${init}"
    fi
    key=$(step_key "$(cat "${exp}/train_config.yaml.new"; echo "${args} ${train_args} ${input_key}")" \
              "${inputs[@]}")
    # Other settings: an error, never a silent retrain. (Markers written before inputs
    # were fingerprinted hold the settings hash alone: the last word of the first line.)
    if [ -f "${exp}/train.key" ] && [ "$(head -n1 "${exp}/train.key" | awk '{print $NF}')" \
            != "$(head -n1 <<< "${key}" | awk '{print $NF}')" ]; then
        rm "${exp}/train_config.yaml.new"
        log "Error: ${exp} was trained with other settings (config, data paths or --train_args changed);"
        log "       remove ${exp}, or pick another --exp_suffix"
        exit 1
    fi
    mv "${exp}/train_config.yaml.new" "${exp}/train_config.yaml"
    if done_with "${exp}/train.done" "${key}"; then
        log "Training ${exp}: already complete, skipped"
        return 0
    fi
    # Same settings, other inputs (e.g. stage 2 re-simulated with another --sim_seed): the
    # checkpoints and decodes belong to the old data, so training starts again from scratch.
    if [ -f "${exp}/train.key" ] && [ "$(cat "${exp}/train.key")" != "${key}" ]; then
        # Files gone from under an input (a moved corpus, a dangling link) are an error,
        # not a reason to remove a trained model.
        local missing
        if ! missing=$(python3 -m merit.utils.fingerprint --missing "${inputs[@]}"); then
            log "Error: ${exp}: inputs $(changed_since "${exp}/train.key" "${key}"), because files they list are gone:"
            log "${missing}"
            log "       nothing removed: restore the files, or remove ${exp} to train it again"
            exit 1
        fi
        log "Training ${exp}: inputs $(changed_since "${exp}/train.key" "${key}");"
        log "       removing its checkpoints and decodes and training it again from scratch"
        find "${exp}" -mindepth 1 -maxdepth 1 ! -name train_config.yaml -exec rm -rf {} +
    fi
    mark_done "${exp}/train.key" "${key}"
    local start=${SECONDS}
    log "Training ${exp} on ${tr_data} (log: ${exp}/train.log)"
    # ESPnet's launcher runs ${cuda_cmd} with --gpu, and one process per GPU (and node)
    # shellcheck disable=SC2086,SC2154
    python3 -m espnet2.bin.launch \
        --cmd "${cuda_cmd}" --log "${exp}/train.log" --ngpu "${ngpu}" --num_nodes "${num_nodes}" \
        --init_file_prefix "${exp}/.dist_init_" --multiprocessing_distributed true -- \
        python3 -m merit.bin.merit_train \
            --config "${exp}/train_config.yaml" \
            --output_dir "${exp}" \
            --class_weights "${tr_data}/utt2emo" \
            --resume true \
            ${args} ${train_args}
    mark_done "${exp}/train.done" "${key}"
    log "Trained ${exp} in $(( SECONDS - start )) s: $(cd "${exp}" && ls -- *.best.pth | tr '\n' ' ')"
}

# inference_checkpoint <exp>: --inference_model, or the config's first best_model_criterion
inference_checkpoint() {
    if [ -n "${inference_model}" ]; then
        echo "${inference_model}"
        return 0
    fi
    python3 -m merit.utils.best_checkpoint "$1/train_config.yaml"
}

# model_key <exp>: what a decode with <exp>'s model depends on
model_key() {
    [ -f "$1/train.done" ] || { log "Error: $1 is not trained (run stage 4)"; exit 1; }
    echo "$(cat "$1/train.done") $(inference_checkpoint "$1")"
}

# computed_while_decoding <set>: whether <set> is a noisy test set whose features stage 5
# computes from its audio instead of reading a dump (unless --dump_test_sets true)
computed_while_decoding() {
    [ "${dump_test_sets}" != true ] && [[ " ${test_sims} " == *" $1 "* ]]
}

# decode <exp> <out root> <input key> <set> <data dir> <feats dir> ...: decode each set
# with <exp>'s model into <out root>/decode_<set>, unless already done with this model
# (and the same <input key>: that of the model that made the input, if one did); the
# batch size is not part of it, as batches give each utterance the same bits
decode() {
    local exp=$1 outroot=$2 model ckpt out key feats opts=() feats_opts=() todo=() keys=() i
    local pairs=()
    local reads_dumps=false
    model="$(model_key "$1") $3"
    ckpt=$(inference_checkpoint "${exp}")
    # Dumped features are read for a model trained on them, as its config says (one
    # trained with dynamic mixing computes its own whatever --ssl_mode says); --ssl_mode
    # for a model without one. Such a model computes a test set's features itself unless
    # stage 3 dumped them (--dump_test_sets true); an empty --feats_dir says so for a set
    # decoded with others that read theirs.
    local reads_feats=false
    if [ -f "${exp}/config.yaml" ]; then
        grep -qx 'frontend: dumped' "${exp}/config.yaml" && reads_feats=true
    else
        [ "${ssl_mode}" = online ] || reads_feats=true
    fi
    shift 3
    while [ $# -gt 0 ]; do
        out=${outroot}/decode_$1
        feats=$3
        if [ "${reads_feats}" = false ] || computed_while_decoding "$1"; then
            feats=""
        fi
        key=$(step_key "${model}" "$2" ${feats:+"${feats}"})
        if ! done_with "${out}/decode.done" "${key}"; then
            [ -f "${out}/decode.done" ] && log "Decoding ${out}: $(changed_since "${out}/decode.done" "${key}")"
            rm -rf "${out}"
            opts+=(--data_dir "$2" --out_dir "${out}")
            pairs+=("$2" "${out}")
            feats_opts+=(--feats_dir "${feats}")
            [ -z "${feats}" ] || reads_dumps=true
            todo+=("${out}")
            keys+=("${key}")
        fi
        shift 3
    done
    if [ ${#todo[@]} -eq 0 ]; then
        log "Decoding with ${exp}/${ckpt}: every set already decoded, skipped"
        return 0
    fi
    # a model with an SE head writes the enhanced speech (a config that says none: no SE)
    if [ ! -f "${exp}/config.yaml" ] || ! grep -qx 'se_head: null' "${exp}/config.yaml"; then
        python3 -m merit.bin.disk_preflight enhanced --target "${outroot}" --force "${force}" \
            "${pairs[@]}"
    fi
    [ "${reads_dumps}" = false ] || opts+=("${feats_opts[@]}")
    opts+=(--model_dir "${exp}" --checkpoint "${ckpt}" --num_jobs "${run_nj}"
           --ngpu "$(( ngpu > 0 ? 1 : 0 ))" --batch_seconds "${decode_batch_size}")
    log "Decoding ${#todo[@]} set(s) with ${exp}/${ckpt} (logs: ${outroot}/decode_log/decode.*.log)"
    # shellcheck disable=SC2154
    ${decode_cmd} --gpu "$(( ngpu > 0 ? 1 : 0 ))" JOB=1:"${run_nj}" "${outroot}/decode_log/decode.JOB.log" \
        python3 -m merit.bin.merit_inference "${opts[@]}" --job JOB
    python3 -m merit.bin.merit_inference "${opts[@]}" --merge true
    for i in "${!todo[@]}"; do
        mark_done "${todo[i]}/decode.done" "${keys[i]}"
    done
}

# enhanced_sets <se exp> <set>...: data dirs (and dumped features: of a training set, or
# of a test set with --dump_test_sets true) of <se exp>'s enhanced output of each set, in
# its decode dirs; prints "<set> <data> <feats>"
enhanced_sets() {
    local se_exp=$1 dset dec dump triples=() todo=() keys=() i=0
    shift
    for dset in "$@"; do
        dec=${se_exp}/decode_${dset}
        dump=true
        if [ "${ssl_mode}" = online ] || computed_while_decoding "${dset}"; then
            dump=false
        fi
        keys+=("$(cat "${dec}/decode.done")"$'\n'"features dumped: ${dump}")
        if ! done_with "${dec}/derived.done" "${keys[-1]}"; then
            derive_set "data/${dset}" "${dec}/data" "${dec}/enhanced.scp"
            [ "${dump}" = false ] || todo+=("${dec}/data" "${dec}/feats")
        fi
        triples+=("${dset}" "${dec}/data" "${dec}/feats")
    done
    if [ ${#todo[@]} -gt 0 ]; then
        preflight_feats enhanced_feats "${se_exp}" "${todo[@]}"
        dump_changed "${se_exp}/decode_log" "${run_nj}" "${todo[@]}" >&2
    fi
    for dset in "$@"; do
        mark_done "${se_exp}/decode_${dset}/derived.done" "${keys[i]}"
        i=$((i + 1))
    done
    echo "${triples[@]}"
}

# matrix_models <train|decode>: "<model> <seed>" for every system and seed, each once.
# A cascade trains its enhancer and its classifier (one trained on enhanced speech
# waits for the enhancer: stage_train), and decodes the test sets with the enhancer.
matrix_models() {
    local seed system
    for seed in ${seeds}; do
        for system in ${systems}; do
            if [ "${system}" = cascade ]; then
                echo "se_only ${seed}"
                if [ "$1" = train ] && [ "${cascade_ser}" != ser_only_enhanced ]; then
                    echo "${cascade_ser} ${seed}"
                fi
            else
                echo "${system} ${seed}"
            fi
        done
    done | awk '!seen[$0]++'
}

# train_run "<model> <seed>"
train_run() {
    local model seed
    read -r model seed <<< "$1"
    case "${model}" in
        ser_only_clean)
            train_model "${model}" "${seed}" "data/${train_set}_clean" "${feats_dir}/${train_set}_clean" \
                "data/${valid_set}_clean" "${feats_dir}/${valid_set}_clean" ;;
        ser_only_enhanced)
            local se_exp se_key sets tr_data tr_feats cv_data cv_feats
            se_exp=$(exp_dir se_only "${seed}")
            se_key=$(model_key "${se_exp}")
            decode "${se_exp}" "${se_exp}" "" "${train_sim}" "data/${train_sim}" "${feats_dir}/${train_sim}" \
                "${valid_sim}" "data/${valid_sim}" "${feats_dir}/${valid_sim}"
            sets=$(enhanced_sets "${se_exp}" "${train_sim}" "${valid_sim}")
            read -r _ tr_data tr_feats _ cv_data cv_feats <<< "${sets}"
            train_model "${model}" "${seed}" "${tr_data}" "${tr_feats}" "${cv_data}" "${cv_feats}" "${se_key}" ;;
        *)
            train_model "${model}" "${seed}" "data/${train_sim}" "${feats_dir}/${train_sim}" \
                "data/${valid_sim}" "${feats_dir}/${valid_sim}" ;;
    esac
}

# Stage 6's reference scores (the noisy input and the oracle bounds of each system's SE
# head: the same for every system scored on a set) fill their caches in data/<set>/ in
# the background while stage 4 trains fewer models at once than --nj jobs: with --nj
# jobs at the lowest priority (nice 19), so that they take the cores training leaves
# idle, then those decoding leaves idle, then all while stage 6 waits for them.
references_pid=""
references_log=${expdir}/score_references${exp_suffix}.log
trap '[ -z "${references_pid}" ] || { pkill -P "${references_pid}"; kill "${references_pid}"; } 2> /dev/null || true' EXIT

# score_references <jobs>: the caches of every test set, for the SE head of each system
score_references() {
    local jobs=$1 system dset config configs=() tmp
    tmp=$(mktemp -d)
    for system in ${systems}; do
        [ "${system}" = cascade ] && system=se_only  # its enhancer
        compose_system "${system}" "${tmp}/${system}.yaml"
        configs+=("${tmp}/${system}.yaml")
    done
    local sets=()
    for dset in ${test_sims}; do
        sets+=(--data_dir "data/${dset}" --noisy_cache "data/${dset}/noisy_se_scores.tsv")
    done
    for config in "${configs[@]}"; do
        python3 -m merit.bin.score "${sets[@]}" --nj "${jobs}" --oracle_config "${config}" \
            "${metric_args[@]}"
    done
    rm -rf "${tmp}"
}

stage_train() {
    local runs=() seed at_once
    mapfile -t runs < <(matrix_models train)
    at_once=$(( ${#runs[@]} < parallel_runs ? ${#runs[@]} : parallel_runs ))
    if [ "${nj}" -gt "${at_once}" ] && [ "${stop_stage}" -ge 6 ] && [ "${skip_eval}" != true ] &&
            [ -n "${test_sims// /}" ]; then
        mkdir -p "${expdir}"
        log "Training takes ${at_once} of --nj ${nj} jobs: stage 6's scores of the noisy test sets and of the oracle bounds are computed meanwhile, at low priority (log: ${references_log})"
        { renice -n 19 -p "${BASHPID}" > /dev/null; score_references "${nj}"; } > "${references_log}" 2>&1 &
        references_pid=$!
    fi
    log "Training ${#runs[@]} model(s), ${parallel_runs} at a time: ${runs[*]/%/;}"
    run_pool train_run "${runs[@]}"
    if [ "${has_cascade}" = true ] && [ "${cascade_ser}" = ser_only_enhanced ]; then
        runs=()
        for seed in ${seeds}; do runs+=("ser_only_enhanced ${seed}"); done
        run_pool train_run "${runs[@]}"
    fi
}

# test_triples: "<set> <data dir> <feats dir>" of every test set
test_triples() {
    local dset
    for dset in ${test_sims}; do
        echo "${dset} data/${dset} ${feats_dir}/${dset}"
    done
}

# decode_run "<model> <seed>": the test sets
decode_run() {
    local model seed exp
    read -r model seed <<< "$1"
    exp=$(exp_dir "${model}" "${seed}")
    # shellcheck disable=SC2046
    decode "${exp}" "${exp}" "" $(test_triples)
}

# cascade_run <seed>: the classifier decodes the enhancer's output of the test sets
cascade_run() {
    local seed=$1 se_exp se_key ser_exp exp sets dset
    se_exp=$(exp_dir se_only "${seed}")
    se_key=$(model_key "${se_exp}")
    ser_exp=$(exp_dir "${cascade_ser}" "${seed}")
    exp=$(exp_dir "${cascade_name}" "${seed}")
    mkdir -p "${exp}"
    printf 'enhancer: %s\nclassifier: %s (trained on %s speech)\n' \
        "${se_exp}" "${ser_exp}" "${cascade_ser_train}" > "${exp}/components"
    # shellcheck disable=SC2086
    sets=$(enhanced_sets "${se_exp}" ${test_sims})
    # shellcheck disable=SC2086
    decode "${ser_exp}" "${exp}" "${se_key}" ${sets}
    for dset in ${test_sims}; do  # SE: the enhancer's output
        cp "${se_exp}/decode_${dset}/enhanced.scp" "${exp}/decode_${dset}/enhanced.scp"
    done
}

stage_decode() {
    local runs=() seed
    mapfile -t runs < <(matrix_models decode)
    run_pool decode_run "${runs[@]}"
    if [ "${has_cascade}" = true ]; then
        runs=()
        for seed in ${seeds}; do runs+=("${seed}"); done
        run_pool cascade_run "${runs[@]}"
    fi
}

# score_run <exp>: scores of its test sets, with the oracle bounds of the SE head that
# made their enhanced output (a cascade's: its enhancer's; none without an SE head),
# its plots and RESULTS.md
score_run() {
    local exp=$1 dset dec key config=$1/config.yaml opts=() todo=() keys=() i
    if [ -f "${exp}/components" ]; then  # a cascade (cascade_run)
        config=$(sed -n 's/^enhancer: //p' "${exp}/components")/config.yaml
    fi
    for dset in ${test_sims}; do
        dec=${exp}/decode_${dset}
        [ -f "${dec}/decode.done" ] || { log "Error: ${dec} is not decoded (run stage 5)"; exit 1; }
        key="$(cat "${dec}/decode.done")"$'\n'"oracle_config ${config}"$'\n'"metrics ${scored_metrics}"
        done_with "${dec}/score.done" "${key}" && continue
        [ ! -f "${dec}/score.done" ] ||
            log "Scoring ${dec} again: $(changed_since "${dec}/score.done" "${key}")"
        opts+=(--data_dir "data/${dset}" --decode_dir "${dec}"
               --noisy_cache "data/${dset}/noisy_se_scores.tsv")
        todo+=("${dec}")
        keys+=("${key}")
    done
    if [ ${#todo[@]} -gt 0 ]; then  # one process for the sets: it starts once
        python3 -m merit.bin.score "${opts[@]}" --nj "${run_nj}" --oracle_config "${config}" \
            "${metric_args[@]}"
        for i in "${!todo[@]}"; do
            mark_done "${todo[i]}/score.done" "${keys[i]}"
        done
    fi
    if [ ${#todo[@]} -eq 0 ] && [ -f "${exp}/RESULTS.md" ]; then
        log "Scoring ${exp}: every set already scored, skipped"
        return 0
    fi
    python3 -m merit.bin.plot_decodes "${exp}"
    python3 -m merit.bin.results_md "${exp}" > "${exp}/RESULTS.md.tmp"
    mv "${exp}/RESULTS.md.tmp" "${exp}/RESULTS.md"
    log "Wrote ${exp}/RESULTS.md"
}

stage_score() {
    local exps=() args=() system seed base tables report scored_metrics
    if [ -n "${references_pid}" ]; then
        log "Waiting for the reference scores started in stage 4 (log: ${references_log})"
        wait "${references_pid}" || { log "Error: scoring the noisy test sets and the oracle bounds failed: see ${references_log}"; exit 1; }
        references_pid=""
    fi
    for seed in ${seeds}; do
        for system in ${systems}; do exps+=("$(exp_dir "$(system_name "${system}")" "${seed}")"); done
    done
    scored_metrics=$(scored_se_metrics)  # part of each set's score key: new metrics rescore
    run_pool score_run "${exps[@]}"
    for base in ${baselines}; do
        [[ " ${systems} " == *" ${base} "* ]] &&
            args+=(--baseline "$(system_name "${base}")_${upstream}${exp_suffix}")
    done
    tables=${expdir}/tables_${upstream}${exp_suffix}.md
    python3 -m merit.bin.make_tables "${exps[@]}" "${args[@]}" > "${tables}.tmp"
    mv "${tables}.tmp" "${tables}"
    log "Tables of ${systems// /, } over seed(s) ${seeds// /, } (also in ${tables}):"
    cat "${tables}" >&2
    report=${expdir}/report
    python3 -m merit.bin.make_report "${exps[@]}" --tables "${tables}" --out_dir "${report}"
    log "Listening page (audio examples, tables, plots): ${report}/index.html"
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
