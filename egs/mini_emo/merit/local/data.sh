#!/usr/bin/env bash
# Stage 1 for mini_emo: render the shipped speech in four emotion styles as an
# MSP-Podcast-shaped corpus (data/local/mini_emo), prepare data/{train,dev,test1}
# with the same code as the real MSP-Podcast recipe, and build the noise pools
# data/noise/{train,dev,test_seen,test_unseen}.scp from the split and category that
# downloads/noise/noise.tsv gives each file (scripts/prep_noise.sh).
set -euo pipefail

log() {
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${0##*/}) $*" >&2
}

nj=2                                  # parallel rendering processes
seed=1                                # seed of the style rendering
downloads=downloads                   # the shipped corpus
corpus=data/local/mini_emo            # where the rendered corpus goes
dev_speakers="be_f1 ru_m2"           # speakers of the Development split (two: a steadier checkpoint signal)
test_speakers="it_m1 el_f1"           # speakers of the Test1 split (one male, one female)

help_message=$(cat << EOF
Usage: $0 [options]
  --nj             # parallel rendering processes (${nj})
  --seed           # seed of the style rendering (${seed})
  --downloads      # the shipped corpus (${downloads})
  --corpus         # where the MSP-Podcast-shaped corpus is written (${corpus})
  --dev_speakers   # speakers of the Development split ("${dev_speakers}")
  --test_speakers  # speakers of the Test1 split ("${test_speakers}")
EOF
)
. utils/parse_options.sh
. ./path.sh

log "Rendering ${downloads}/speech in four emotion styles into ${corpus}"
python3 -m merit.bin.make_mini_emo --downloads "${downloads}" --out "${corpus}" \
    --dev_speakers "${dev_speakers}" --test_speakers "${test_speakers}" \
    --seed "${seed}" --nj "${nj}"

log "Preparing data/ from ${corpus} (same code as the MSP-Podcast recipe)"
python3 -m merit.bin.prep_msp_podcast --corpus "${corpus}" --out data

log "Building the noise pools in data/noise from ${downloads}/noise/noise.tsv"
# noise.tsv gives each file's split and category; its paths start at downloads/
scripts/prep_noise.sh --seen_corpora "" --unseen_corpora "" \
    --listed_corpora "mini_emo=${downloads}/noise/noise.tsv" \
    --listed_root "$(cd "${downloads}" && pwd)"
log "Done: $(wc -l < data/train/wav.scp) train, $(wc -l < data/dev/wav.scp) dev, $(wc -l < data/test1/wav.scp) test1 utterances"
