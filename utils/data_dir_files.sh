#!/usr/bin/env bash
# Lists the data files of a Kaldi-style data directory, one name per line, sorted.
#
#   utils/data_dir_files.sh <data-dir> utt|spk|all
#
#   utt  utterance-keyed files: utt2* (utt2spk, utt2emo, ...), *.scp, feats_shape, text
#   spk  speaker-keyed files: spk2* (spk2gender, ...) except spk2utt
#   all  both, plus spk2utt
# Only plain names count (letters, digits, underscores; *.scp), so audio or other
# files kept in the directory (spk2-utt3.wav) are never mistaken for data files.
# The one definition every data-dir tool in utils/ uses.
set -euo pipefail

if [ $# -ne 2 ] || [[ ! "$2" =~ ^(utt|spk|all)$ ]]; then
    echo "Usage: $0 <data-dir> utt|spk|all" >&2
    exit 1
fi
data=$1 kind=$2
[ -d "${data}" ] || { echo "$0: ${data}: not a directory" >&2; exit 1; }

for path in "${data}"/*; do
    [ -f "${path}" ] || continue
    name=${path##*/}
    if [[ "${name}" =~ ^(utt2[A-Za-z0-9_]+|[A-Za-z0-9_]+\.scp|feats_shape|text)$ ]]; then
        [ "${kind}" = spk ] || echo "${name}"
    elif [[ "${name}" =~ ^spk2[A-Za-z0-9_]+$ ]]; then
        if [ "${name}" = spk2utt ]; then
            [ "${kind}" != all ] || echo "${name}"
        else
            [ "${kind}" = utt ] || echo "${name}"
        fi
    fi
done | LC_ALL=C sort
