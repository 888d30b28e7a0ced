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
skip_missing=false     # skip (and count) listed files that are missing or unreadable
noise_opts=""          # options for scripts/prep_noise.sh

help_message=$(cat << EOF
Usage: $0 [options]
  --classes        # EmoClass codes to keep (${classes})
  --suffix         # appended to the set names ("${suffix}")
  --skip_missing   # skip listed audio that is missing or unreadable, instead of stopping (${skip_missing})
  --noise_opts     # options for scripts/prep_noise.sh ("${noise_opts}")
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
    --classes "${classes}" --skip_missing "${skip_missing}" --suffix "${suffix}"

# shellcheck disable=SC2086
scripts/prep_noise.sh ${noise_opts}
log "Done: $(for d in data/train"${suffix}" data/dev"${suffix}" data/test?"${suffix}"; do [ -f "${d}/wav.scp" ] && printf '%s %d, ' "${d#data/}" "$(wc -l < "${d}/wav.scp")"; done)utterances"
