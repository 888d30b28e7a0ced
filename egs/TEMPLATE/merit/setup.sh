#!/usr/bin/env bash
# Creates a new corpus recipe from this template, like ESPnet's TEMPLATE/*/setup.sh.
#
#   egs/TEMPLATE/merit/setup.sh egs/<corpus>/merit
#
# Links merit.sh, path.sh, db.sh, utils and conf/systems to the template (so fixes reach
# every recipe), copies cmd.sh and the rest of conf/ (settings you may edit), writes a run.sh
# and a local/data.sh to fill in, and adds the corpus's variable to db.sh.
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
for f in merit.sh path.sh db.sh utils; do
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
# Stage 1 for ${corpus}: write Kaldi-style data/{train,dev,test} (wav.scp, utt2spk,
# spk2utt, utt2emo) from the corpus at \${${db_var}} (set it in db.sh).
set -euo pipefail
. ./db.sh
. ./path.sh

if [ -z "\${${db_var}:-}" ]; then
    echo "\$0: set ${db_var} in db.sh to the root of the ${corpus} corpus" >&2
    exit 1
fi
echo "\$0: not written yet: prepare data/{train,dev,test} from \${${db_var}} here" >&2
exit 1
EOF
chmod +x "${target}/run.sh" "${target}/local/data.sh"

if ! grep -q "^${db_var}=" "${template}/db.sh"; then
    printf '%-37s # egs/%s/merit\n' "${db_var}=\${${db_var}:-}" "${corpus}" >> "${template}/db.sh"
fi

echo "$0: created ${target}"
echo "$0: next: set ${db_var} in ${template}/db.sh and write ${target}/local/data.sh"
