#!/usr/bin/env bash
# Stage 1 for MSP-Podcast: data/{train,dev,test1,test2[,test3]}<suffix> from the release at
# ${MSP_PODCAST} (Labels/labels_consensus.csv, Audios/) through merit/data/msp_podcast.py,
# then the noise pools data/noise/{train,dev,test_seen,test_unseen}.scp from the noise
# corpora named in db.sh (scripts/prep_noise.sh).
set -euo pipefail

log() {
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${0##*/}) $*" >&2
}

classes=A,S,H,N        # EmoClass codes kept (A,S,H,U,F,D,C,N for the 8-class setup)
suffix=""              # appended to the set names: data/train<suffix>, ...
skip_missing=false     # skip (and count) listed files that are missing, unreadable or truncated
min_duration=0.5       # seconds; shorter utterances are out of bounds
max_duration=30        # seconds; longer utterances are out of bounds
duration_action=stop   # out-of-bounds utterances: stop (naming them), skip (counted) or warn (kept)
skip_bad_noise=false   # leave out unusable (unreadable, silent, short) noise files (prep_noise.sh --skip_bad)
min_noise_seconds=""   # shorter noise files are unusable (default: prep_noise.sh's)
silence_dbfs=""        # noise files with a lower RMS are silent (default: prep_noise.sh's)
seen_noise=""          # seen noise corpora, comma-separated (default: prep_noise.sh's)
unseen_noise=""        # unseen noise corpora, comma-separated (default: prep_noise.sh's)
noise_opts=""          # more options for scripts/prep_noise.sh (split on whitespace)

help_message=$(cat << EOF
Usage: $0 [options]
  --classes         # EmoClass codes to keep (${classes})
  --suffix          # appended to the set names ("${suffix}")
  --skip_missing    # skip listed audio that is missing, unreadable or truncated, instead of stopping (${skip_missing})
  --min_duration    # seconds; shorter utterances are out of bounds (${min_duration})
  --max_duration    # seconds; longer utterances are out of bounds (${max_duration})
  --duration_action # out-of-bounds utterances: stop, skip or warn (${duration_action})
  --skip_bad_noise  # leave out unusable (unreadable, silent, too short) noise files instead of stopping (${skip_bad_noise})
  --min_noise_seconds # shorter noise files are unusable ("${min_noise_seconds}" = prep_noise.sh's)
  --silence_dbfs    # noise files with a lower RMS (dBFS) are silent ("${silence_dbfs}" = prep_noise.sh's)
  --seen_noise      # seen noise corpora, comma-separated, e.g. crss,musan ("${seen_noise}" = prep_noise.sh's)
  --unseen_noise    # unseen noise corpora, comma-separated, e.g. dns ("${unseen_noise}" = prep_noise.sh's)
  --noise_opts      # more options for scripts/prep_noise.sh, split on whitespace ("${noise_opts}")
EOF
)
. utils/parse_options.sh
. ./db.sh
. ./path.sh

if [ -z "${MSP_PODCAST}" ]; then
    log "Error: set MSP_PODCAST in db.sh (egs/TEMPLATE/merit/db.sh) to the MSP-Podcast release root (1.11 or later: Audios/, Labels/labels_consensus.csv)"
    exit 1
fi
for f in "${MSP_PODCAST}/Labels/labels_consensus.csv" "${MSP_PODCAST}/Audios"; do
    [ -e "${f}" ] || { log "Error: MSP_PODCAST=${MSP_PODCAST}: ${f} is missing (is MSP_PODCAST in db.sh the release root?)"; exit 1; }
done

log "Preparing data/ from ${MSP_PODCAST} (classes ${classes})"
python3 -m merit.bin.prep_msp_podcast --corpus "${MSP_PODCAST}" --out data \
    --classes "${classes}" --skip_missing "${skip_missing}" --suffix "${suffix}" \
    --min_duration "${min_duration}" --max_duration "${max_duration}" \
    --duration_action "${duration_action}"

noise_args=(--skip_bad "${skip_bad_noise}")
[ -z "${seen_noise}" ] || noise_args+=(--seen_corpora "${seen_noise//,/ }")
[ -z "${unseen_noise}" ] || noise_args+=(--unseen_corpora "${unseen_noise//,/ }")
[ -z "${min_noise_seconds}" ] || noise_args+=(--min_noise_seconds "${min_noise_seconds}")
[ -z "${silence_dbfs}" ] || noise_args+=(--silence_dbfs "${silence_dbfs}")
# shellcheck disable=SC2086
scripts/prep_noise.sh "${noise_args[@]}" ${noise_opts}
log "Done: $(for d in data/train"${suffix}" data/dev"${suffix}" data/test?"${suffix}"; do [ -f "${d}/wav.scp" ] && printf '%s %d, ' "${d#data/}" "$(wc -l < "${d}/wav.scp")"; done)utterances"
