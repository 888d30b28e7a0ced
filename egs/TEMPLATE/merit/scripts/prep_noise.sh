#!/usr/bin/env bash
# Noise pools for stage 2: data/noise/{train,dev,test_seen,test_unseen}.scp
# (<noise-id> <absolute path>, C-sorted) and data/noise/noise_split.tsv (noise_id,
# corpus, pool, path), built by merit.bin.prep_noise. Shared by every recipe (linked
# as scripts/ by egs/TEMPLATE/merit/setup.sh); run it from the recipe directory, e.g.
# at the end of local/data.sh. The defaults reproduce the paper: CRSS-4ENGLISH-14 and
# Freesound noise are "seen" (split into train/dev/test_seen), DNS Challenge noise is
# "unseen" (test_unseen only).
#
# A corpus in --seen_corpora or --unseen_corpora is either
#   - a name whose root is set in db.sh:
#       crss      CRSS_NOISE       folder: every .wav/.flac/.ogg below it, recursively
#       freesound FREESOUND_NOISE  fsd50k: FSD50K.dev_audio/ and FSD50K.eval_audio/
#                                  when either exists under it, else folder
#       dns       DNS_NOISE        dns: the noise folder itself, or a DNS release root
#                                  with datasets/noise/ or datasets_fullband/noise_fullband/
#       musan     MUSAN            musan: noise/free-sound/ and noise/sound-bible/ (the
#                                  root may also be noise/ itself)
#   - or NAME=LAYOUT:PATH for any other folder, e.g. office=folder:noise/seen (layouts:
#     folder, dns, musan, fsd50k; NAME starts the noise ids; no spaces in PATH).
# A corpus in --listed_corpora, NAME=TABLE, says itself where each file goes: TABLE is
# tab-separated with a header naming at least the columns file (absolute, or relative
# to --listed_root, by default TABLE's folder), split (train, dev or test) and category
# (seen or unseen; unseen noise is test noise only); test noise goes to test_seen or
# test_unseen by category. Its noise ids are the file names without extension
# (egs/mini_emo/merit/downloads/noise/noise.tsv is such a table).
#
# Split rule: every file of a seen corpus belongs to a source recording, and every
# recording gets u = sha1("<seed>:<corpus>/<recording>") read as a fraction in [0,1);
# u < f_train → train, u < f_train+f_dev → dev, else test_seen, for all its files. A
# file's recording is
#   1. with --recording_regex "NAME=REGEX" for its corpus: the first group of REGEX
#      searched in the file's relative path (the whole match if REGEX has no group),
#      when it matches; e.g. crss=^(.*)_[0-9]+\.wav$ puts recA_0001.wav and
#      recA_0002.wav in recording recA, and crss=^(.*)/ makes each folder a recording
#      (for a corpus cut into one folder per recording);
#   2. freesound:<id> for a DNS Challenge chunk <label>_Freesound_validated_<id>_<n>;
#   3. else the relative path itself: each file its own recording.
# A file's pool depends only on the seed, the corpus name, its recording and the
# fractions, never on file order or on the other corpora. A pool that a small seen
# corpus leaves empty takes the recording whose u lies nearest to the pool's interval
# (from a pool that keeps at least one recording); a seen corpus needs at least 3
# recordings. No regex is set by default: a folder is often a category, not a
# recording. Noise ids: <corpus>-<relative path without extension, / → ->.
#
# Checks (--check_audio true): every file is decoded once. One that is unreadable,
# shorter than --min_noise_seconds (a short noise is looped over the utterance) or
# silent (every sample zero, or RMS below --silence_dbfs) stops this script before
# anything is written, naming the first few and counting the rest; --skip_bad true
# leaves them out instead, counted in the log and listed in ${out}/skipped.tsv.
# The same clip in two pools (identical decoded samples in any container, the same
# file, or the same Freesound id in the names: FSD50K's <id>.wav, DNS's chunk names,
# freesound.org's <id>__<user>__<name>) is kept in the earliest of train, dev,
# test_seen, test_unseen only, so test noise is never training noise; what was left
# out is listed in ${out}/duplicates.tsv. Every pool must end up with a file.
# Details: merit/data/noise_pools.py.
set -euo pipefail

log() {
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${0##*/}) $*" >&2
}

seen_corpora="crss freesound"   # split into train / dev / test_seen
unseen_corpora="dns"            # test_unseen only
listed_corpora=""               # NAME=TABLE: each file's pool given by the table
listed_root=""                  # where the tables' relative paths start (default: each table's folder)
out=data/noise                  # where the pools go (replaced as a whole)
seed=1                          # seed of the hash split
fractions=0.8,0.1,0.1           # train,dev,test_seen shares of each seen corpus
check_audio=true                # decode every file: check it, measure hours, hash samples
skip_bad=false                  # leave out unusable (unreadable, silent, short) files instead of stopping
min_noise_seconds=1.0           # shorter noise files are unusable
silence_dbfs=-80                # noise files with a lower RMS are silent, hence unusable
recording_regex=""              # "NAME=REGEX ...": a seen corpus's source recordings (see above)
nj=""                           # threads decoding the audio (default: up to 8)

help_message=$(cat << EOF
Usage: $0 [options]
  --seen_corpora    # corpora split into train/dev/test_seen: names or NAME=LAYOUT:PATH ("${seen_corpora}")
  --unseen_corpora  # corpora used only in test_unseen: names or NAME=LAYOUT:PATH ("${unseen_corpora}")
  --listed_corpora  # NAME=TABLE: corpora whose table gives each file's pool ("${listed_corpora}")
  --listed_root     # folder the tables' relative paths start from ("${listed_root}" = each table's folder)
  --out             # output folder (${out})
  --seed            # seed of the hash split (${seed})
  --fractions       # train,dev,test_seen shares of each seen corpus (${fractions})
  --check_audio     # decode every file: check it, measure hours, find copies (${check_audio})
  --skip_bad        # leave out unreadable, silent and too short files instead of stopping (${skip_bad})
  --min_noise_seconds # with --check_audio, shorter noise files are unusable (${min_noise_seconds})
  --silence_dbfs    # with --check_audio, files with a lower RMS are silent (${silence_dbfs})
  --recording_regex # "NAME=REGEX ...": REGEX's first group in a file's path is its source
                    # recording in seen corpus NAME, e.g. "crss=^(.*)/" ("${recording_regex}")
  --nj              # threads decoding the audio ("${nj}" = up to 8)
Named corpora: crss (CRSS_NOISE), freesound (FREESOUND_NOISE), dns (DNS_NOISE), musan
(MUSAN); set their roots in db.sh. Any other folder is NAME=LAYOUT:PATH, e.g.
  $0 --seen_corpora office=folder:noise/seen --unseen_corpora street=folder:noise/unseen
Layouts: folder, dns, musan, fsd50k. A table's columns: file, split (train, dev,
test), category (seen, unseen). Details at the top of $0.
EOF
)
. utils/parse_options.sh
. ./db.sh
. ./path.sh

# Prints NAME=LAYOUT:PATH for merit.bin.prep_noise: an explicit one as it is, a name
# from its db.sh variable, or fails naming what to set.
corpus_arg() {
    local name=$1 var layout what root
    case "${name}" in
        *=*) echo "${name}"; return 0 ;;
        crss) var=CRSS_NOISE; layout=folder
              what="the folder of CRSS-4ENGLISH-14 noise recordings" ;;
        freesound) var=FREESOUND_NOISE; layout=folder
              what="the FSD50K root (FSD50K.dev_audio/) or a folder of Freesound clips" ;;
        dns) var=DNS_NOISE; layout=dns
              what="the DNS Challenge noise folder or a release root with datasets/noise/" ;;
        musan) var=MUSAN; layout=musan
              what="the MUSAN root (noise/free-sound/, noise/sound-bible/)" ;;
        *) log "Error: unknown noise corpus '${name}'; known: crss freesound dns musan;"
           log "       give any other folder as NAME=LAYOUT:PATH, e.g. office=folder:noise/seen"
           return 1 ;;
    esac
    root=${!var:-}
    if [ -z "${root}" ]; then
        log "Error: set ${var} in db.sh (${what}) to use the '${name}' noise corpus"
        return 1
    fi
    if [ "${name}" = freesound ] && { [ -d "${root}/FSD50K.dev_audio" ] \
            || [ -d "${root}/FSD50K.eval_audio" ]; }; then
        layout=fsd50k
    fi
    echo "${name}=${layout}:${root}"
}

args=()
for name in ${seen_corpora}; do
    arg=$(corpus_arg "${name}") || exit 1
    args+=(--seen "${arg}")
done
for name in ${unseen_corpora}; do
    arg=$(corpus_arg "${name}") || exit 1
    args+=(--unseen "${arg}")
done
for table in ${listed_corpora}; do
    args+=(--listed "${table}")
done
[ -z "${listed_root}" ] || args+=(--listed_root "${listed_root}")
# read -a splits on whitespace without expanding the regexes' * and ? as globs
read -r -a regexes <<< "${recording_regex}"
for entry in ${regexes[@]+"${regexes[@]}"}; do
    args+=(--recording_regex "${entry}")
done
[ -z "${nj}" ] || args+=(--nj "${nj}")

log "Building noise pools in ${out}: seen '${seen_corpora}', unseen '${unseen_corpora}', listed '${listed_corpora}'"
python3 -m merit.bin.prep_noise "${args[@]}" --out "${out}" --seed "${seed}" \
    --fractions "${fractions}" --check_audio "${check_audio}" --skip_bad "${skip_bad}" \
    --min_noise_seconds "${min_noise_seconds}" --silence_dbfs "${silence_dbfs}"
log "Done: $(for pool in train dev test_seen test_unseen; do
    printf '%s %s  ' "${pool}" "$(wc -l < "${out}/${pool}.scp")"; done)"
