#!/usr/bin/env bash
# Creates a new corpus recipe from this template, like ESPnet's TEMPLATE/*/setup.sh.
#
#   egs/TEMPLATE/merit/setup.sh egs/<corpus>/merit
#
# Links merit.sh, path.sh, db.sh, utils, scripts and conf/systems to the template (so fixes
# reach every recipe), copies cmd.sh and the rest of conf/ (settings you may edit), writes a
# run.sh and a local/data.sh to fill in, and adds the corpus's variable to db.sh.
# egs/TEMPLATE/merit/README.md walks a new recipe from here to stage 6.
set -euo pipefail

if [ $# -ne 1 ] || [ "$1" = --help ] || [ "$1" = -h ]; then
    echo "Usage: $0 egs/<corpus>/merit" >&2
    exit 1
fi

template=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
target=$1
if [ -e "${target}" ]; then
    echo "$0: ${target} already exists; remove it first or choose another name" >&2
    exit 1
fi
corpus=$(basename "$(dirname "$(realpath -m "${target}")")")
db_var=$(echo "${corpus}" | tr '[:lower:]' '[:upper:]' | tr -c 'A-Z0-9\n' '_')
[[ "${db_var}" =~ ^[0-9] ]] && db_var=CORPUS_${db_var}

mkdir -p "${target}/local"
target=$(cd "${target}" && pwd)
for f in merit.sh path.sh db.sh utils scripts; do
    ln -s "$(realpath --relative-to="${target}" "${template}/${f}")" "${target}/${f}"
done
cp "${template}/cmd.sh" "${target}/cmd.sh"
cp -r "${template}/conf" "${target}/conf"
rm -r "${target}/conf/systems"  # the system configs are shared, not copied
ln -s "$(realpath --relative-to="${target}/conf" "${template}/conf/systems")" "${target}/conf/systems"

cat > "${target}/run.sh" << EOF
#!/usr/bin/env bash
# Recipe for the ${corpus} corpus: all stages, see ./merit.sh --help.
set -euo pipefail

train_set=train
valid_set=dev
test_sets="test"

./merit.sh \\
    --train_set "\${train_set}" \\
    --valid_set "\${valid_set}" \\
    --test_sets "\${test_sets}" \\
    "\$@"
EOF

cat > "${target}/local/data.sh" << EOF
#!/usr/bin/env bash
# Stage 1 for ${corpus}: the noise pools data/noise/{train,dev,test_seen,test_unseen}.scp
# that stage 2 mixes in, from a noise folder, and the speech data/{train,dev,test}
# (wav.scp, utt2spk, spk2utt, utt2emo) from the corpus at \${${db_var}} (set it in
# db.sh). egs/TEMPLATE/merit/README.md says what each file holds.
set -euo pipefail

log() {
    echo -e "\$(date '+%Y-%m-%dT%H:%M:%S') (\${0##*/}) \$*" >&2
}

noise_dir=noise  # seen/: noise split into train, dev and test_seen; unseen/: test_unseen only

help_message=\$(cat << EOM
Usage: \$0 [options]
  --noise_dir  # noise folder with seen/ and unseen/ (\${noise_dir})
EOM
)
. utils/parse_options.sh
. ./db.sh
. ./path.sh

if [ -z "\${${db_var}:-}" ]; then
    log "Error: set ${db_var} in db.sh to the root of the ${corpus} corpus"
    exit 1
fi

# The noise pools: the audio files below \${noise_dir}/seen are split by a hash into
# train, dev and test_seen, those below \${noise_dir}/unseen are test_unseen
# (scripts/prep_noise.sh --help: noise corpora from db.sh, tables of given pools).
for dir in "\${noise_dir}/seen" "\${noise_dir}/unseen"; do
    if [ ! -d "\${dir}" ]; then
        log "Error: \${dir} is missing: put (or link) the noise heard in training in \${noise_dir}/seen/"
        log "       (at least 3 files) and the noise kept for test_unseen in \${noise_dir}/unseen/,"
        log "       or pass --local_data_opts '--noise_dir DIR' (egs/TEMPLATE/merit/README.md)"
        exit 1
    fi
done
scripts/prep_noise.sh --seen_corpora "seen=folder:\${noise_dir}/seen" \\
    --unseen_corpora "unseen=folder:\${noise_dir}/unseen"

# The speech: replace these two lines with the code that writes data/train, data/dev and
# data/test from \${${db_var}} (egs/TEMPLATE/merit/README.md).
log "Error: \$0 is not written yet: prepare data/{train,dev,test} from \${${db_var}} here"
exit 1
EOF
chmod +x "${target}/run.sh" "${target}/local/data.sh"

if ! grep -q "^${db_var}=" "${template}/db.sh"; then
    printf '%-37s # egs/%s/merit\n' "${db_var}=\${${db_var}:-}" "${corpus}" >> "${template}/db.sh"
fi

echo "$0: created ${target}"
echo "$0: next: set ${db_var} in ${template}/db.sh, put noise in ${target}/noise/{seen,unseen}/"
echo "$0: and write the speech part of ${target}/local/data.sh (${template}/README.md)"
