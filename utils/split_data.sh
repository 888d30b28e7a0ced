#!/usr/bin/env bash
# Split a data directory into N pieces, <data-dir>/split<N>/{1..N}/ (with --per-utt:
# <data-dir>/split<N>utt/{1..N}/, as in Kaldi).  By default each speaker's
# utterances stay in one piece; --per-utt splits utt2spk by line, so one speaker
# may span pieces.  Every utterance-keyed file (utt2*, *.scp, feats_shape, text)
# and speaker-keyed file (spk2* but spk2utt) is filtered to each piece, and each
# piece gets its own spk2utt.  An existing split directory is replaced.
set -euo pipefail
export LC_ALL=C
me=split_data.sh
utils=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() {
  cat <<END
Usage: $me [--per-utt] <data-dir> <num-to-split>
  Writes <data-dir>/split<N>/1 ... <data-dir>/split<N>/<N>, splitting by speaker.
  --per-utt   split by utterance instead; writes <data-dir>/split<N>utt/...
Example: $me data/train 8
END
}

per_utt=false
while [ $# -gt 0 ]; do
  case $1 in
    --per-utt) per_utt=true; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "$me: unknown option $1" >&2; usage >&2; exit 1 ;;
    *) break ;;
  esac
done
[ $# -eq 2 ] || { usage >&2; exit 1; }
data=${1%/} nj=$2
[[ $nj =~ ^[1-9][0-9]*$ ]] || { echo "$me: <num-to-split> must be a positive integer, got '$nj'" >&2; exit 1; }
[ -f "$data/utt2spk" ] || { echo "$me: $data/utt2spk: file is missing" >&2; exit 1; }

if $per_utt; then out=$data/split${nj}utt; else out=$data/split$nj; fi
rm -rf "$out"
pieces=()
for n in $(seq "$nj"); do
  mkdir -p "$out/$n"
  pieces+=("$out/$n/utt2spk")
done

if $per_utt; then by_speaker=(); else by_speaker=(--utt2spk="$data/utt2spk"); fi
"$utils/split_scp.pl" "${by_speaker[@]}" "$data/utt2spk" "${pieces[@]}" || { rm -rf "$out"; exit 1; }

for n in $(seq "$nj"); do
  piece=$out/$n
  for f in $("$utils/data_dir_files.sh" "$data" utt); do
    if [ "$f" != utt2spk ]; then
      "$utils/filter_scp.pl" "$piece/utt2spk" "$data/$f" > "$piece/$f"
    fi
  done
  "$utils/utt2spk_to_spk2utt.pl" "$piece/utt2spk" | sort -k1,1 > "$piece/spk2utt"
  for f in $("$utils/data_dir_files.sh" "$data" spk); do
    "$utils/filter_scp.pl" "$piece/spk2utt" "$data/$f" > "$piece/$f"
  done
done
