#!/usr/bin/env bash
# Combine several data directories into one.  utt2spk is required in every
# source and an utterance id may occur in only one source.  Any other
# utterance-keyed file (utt2*, *.scp, feats_shape, text) or speaker-keyed file
# (spk2* but spk2utt) is combined only if every source has it (otherwise a
# warning names it).  A speaker may appear in several sources; for speaker-keyed
# files the first line for a speaker wins.  Output is sorted with LC_ALL=C and
# spk2utt is regenerated.  Data files already in <dest-dir> go to <dest-dir>/.backup/.
set -euo pipefail
export LC_ALL=C
me=combine_data.sh
utils=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() {
  cat <<END
Usage: $me <dest-dir> <src-dir1> <src-dir2> [<src-dir3> ...]
Example: $me data/train_all data/train_clean data/train_noisy
END
}
case ${1:-} in -h|--help) usage; exit 0 ;; esac
[ $# -ge 2 ] || { usage >&2; exit 1; }
dest=${1%/}; shift
srcs=()
for src in "$@"; do
  src=${src%/}
  [ -f "$src/utt2spk" ] || { echo "$me: $src/utt2spk: file is missing" >&2; exit 1; }
  srcs+=("$src")
done
mkdir -p "$dest"
for src in "${srcs[@]}"; do
  [ "$(cd "$src" && pwd)" != "$(cd "$dest" && pwd)" ] \
    || { echo "$me: <dest-dir> $dest is also a source" >&2; exit 1; }
done

# An utterance id must not occur twice.
dup=$(for src in "${srcs[@]}"; do awk 'NF { print $1 }' "$src/utt2spk"; done | sort | uniq -d | sed -n 1p)
if [ -n "$dup" ]; then
  where=$(for src in "${srcs[@]}"; do awk -v u="$dup" -v s="$src" '$1 == u { print s }' "$src/utt2spk"; done)
  echo "$me: duplicate utterance id '$dup' (in $(echo $where)); give the sources distinct ids," \
       "e.g. with utils/copy_data_dir.sh --utt-prefix" >&2
  exit 1
fi

for f in $("$utils/data_dir_files.sh" "$dest" all); do
  mkdir -p "$dest/.backup"; mv "$dest/$f" "$dest/.backup/"
done

# All data-file names found in any source.
names=$(for src in "${srcs[@]}"; do
  "$utils/data_dir_files.sh" "$src" all
done | sort -u)

for f in $names; do
  [ "$f" != spk2utt ] || continue
  missing=()
  for src in "${srcs[@]}"; do
    if [ ! -f "$src/$f" ]; then missing+=("$src"); fi
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "$me: warning: $f is missing from ${missing[*]}; not combining it" >&2
    continue
  fi
  for src in "${srcs[@]}"; do cat "$src/$f"; done > "$dest/$f.tmp"
  case $f in
    spk2*) # speaker-keyed: keep the first line for each speaker
      awk 'NF && !seen[$1]++' "$dest/$f.tmp" | sort -k1,1 > "$dest/$f" ;;
    *) awk 'NF' "$dest/$f.tmp" | sort -k1,1 > "$dest/$f" ;;
  esac
  rm "$dest/$f.tmp"
done
"$utils/utt2spk_to_spk2utt.pl" "$dest/utt2spk" | sort -k1,1 > "$dest/spk2utt"
echo "$me: combined ${#srcs[@]} directories into $dest ($(wc -l < "$dest/utt2spk") utterances)"
