#!/usr/bin/env bash
# Stage 1 for mini_emo: render the shipped speech in four emotion styles as an
# MSP-Podcast-shaped corpus (data/local/mini_emo), prepare data/{train,dev,test1}
# with the same code as the real MSP-Podcast recipe, and list the noise pools
# data/noise/{train,dev,test_seen,test_unseen}.scp from downloads/noise/noise.tsv.
set -euo pipefail

log() {
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${0##*/}) $*" >&2
}

nj=2                                  # parallel rendering processes
seed=1                                # seed of the style rendering
downloads=downloads                   # the shipped corpus
corpus=data/local/mini_emo            # where the rendered corpus goes
dev_speakers="be_f1"                 # speakers of the Development split
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

log "Listing noise pools in data/noise"
noise_tsv=${downloads}/noise/noise.tsv
[ -f "${noise_tsv}" ] || { log "Error: ${noise_tsv} is missing"; exit 1; }
rm -rf data/noise.tmp && mkdir -p data/noise.tmp
# noise.tsv columns: file (relative to downloads/), type, split, category, source_package
awk -F'\t' -v root="$(cd "${downloads}" && pwd)" -v out=data/noise.tmp '
    NR == 1 { next }
    {
        pool = ($3 == "test") ? "test_" $4 : $3
        id = $1; sub(/^.*\//, "", id); sub(/\.[^.]*$/, "", id)
        print id, root "/" $1 > (out "/" pool ".scp")
    }' "${noise_tsv}"
for pool in train dev test_seen test_unseen; do
    [ -s "data/noise.tmp/${pool}.scp" ] || { log "Error: ${noise_tsv} lists no ${pool} noise"; exit 1; }
    LC_ALL=C sort -o "data/noise.tmp/${pool}.scp" "data/noise.tmp/${pool}.scp"
done
rm -rf data/noise && mv data/noise.tmp data/noise
log "Done: $(wc -l < data/train/wav.scp) train, $(wc -l < data/dev/wav.scp) dev, $(wc -l < data/test1/wav.scp) test1 utterances"
