#!/usr/bin/env bash
# Make a data directory holding a subset of another one's utterances: the first
# N utterances in sorted (LC_ALL=C) order of utterance id, the utterances listed
# in a file, or all utterances of the speakers listed in a file.  Every
# utterance-keyed file (utt2*, *.scp, feats_shape, text) and speaker-keyed file
# (spk2* but spk2utt) is copied, filtered and sorted; spk2utt is regenerated.
# Data files already in <dest-dir> are moved to <dest-dir>/.backup/.
set -euo pipefail
export LC_ALL=C
me=subset_data_dir.sh
utils=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() {
  cat <<END
Usage: $me <src-dir> <num-utts> <dest-dir>
       $me <src-dir> --utt-list <file> <dest-dir>
       $me <src-dir> --spk-list <file> <dest-dir>
  <num-utts>        take the first N utterance ids in LC_ALL=C sorted order
  --utt-list FILE   take the utterances named by the first field of each line
  --spk-list FILE   take every utterance of the speakers named in FILE
  (The options may also come first: $me --utt-list FILE <src-dir> <dest-dir>.)
Example: $me data/train 10 data/train_10
END
}

mode= list= args=()
while [ $# -gt 0 ]; do
  case $1 in
    --utt-list|--spk-list)
      [ $# -ge 2 ] || { usage >&2; exit 1; }
      [ -z "$mode" ] || { echo "$me: give only one of --utt-list/--spk-list" >&2; exit 1; }
      mode=${1#--}; list=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "$me: unknown option $1" >&2; usage >&2; exit 1 ;;
    *) args+=("$1"); shift ;;
  esac
done
if [ -z "$mode" ]; then
  [ ${#args[@]} -eq 3 ] || { usage >&2; exit 1; }
  mode=num; num=${args[1]}; args=("${args[0]}" "${args[2]}")
  [[ $num =~ ^[1-9][0-9]*$ ]] || { echo "$me: <num-utts> must be a positive integer, got '$num'" >&2; exit 1; }
else
  [ ${#args[@]} -eq 2 ] || { usage >&2; exit 1; }
  [ -f "$list" ] || { echo "$me: $list: no such file" >&2; exit 1; }
fi
src=${args[0]%/} dest=${args[1]%/}
[ -f "$src/utt2spk" ] || { echo "$me: $src/utt2spk: file is missing" >&2; exit 1; }
[ "$(cd "$src" && pwd)" != "$(mkdir -p "$dest" && cd "$dest" && pwd)" ] \
  || { echo "$me: <src-dir> and <dest-dir> must differ" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The chosen utterance ids, sorted, in $tmp/utts.
awk 'NF { print $1 }' "$src/utt2spk" | sort -u > "$tmp/all"
case $mode in
  num)
    total=$(wc -l < "$tmp/all")
    [ "$num" -le "$total" ] || { echo "$me: asked for $num utterances but $src has only $total" >&2; exit 1; }
    awk -v n="$num" 'NR <= n' "$tmp/all" > "$tmp/utts" ;;
  utt-list)
    awk 'NF { print $1 }' "$list" | sort -u > "$tmp/wanted"
    comm -12 "$tmp/all" "$tmp/wanted" > "$tmp/utts"
    unknown=$(comm -13 "$tmp/all" "$tmp/wanted" | wc -l)
    if [ "$unknown" -gt 0 ]; then echo "$me: warning: $unknown utterance(s) of $list are not in $src" >&2; fi ;;
  spk-list)
    "$utils/filter_scp.pl" -f 2 "$list" "$src/utt2spk" | awk '{ print $1 }' | sort -u > "$tmp/utts" ;;
esac
[ -s "$tmp/utts" ] || { echo "$me: no utterances selected from $src" >&2; exit 1; }

for f in $("$utils/data_dir_files.sh" "$dest" all); do
  mkdir -p "$dest/.backup"; mv "$dest/$f" "$dest/.backup/"
done
for f in $("$utils/data_dir_files.sh" "$src" utt); do
  "$utils/filter_scp.pl" "$tmp/utts" "$src/$f" | sort -k1,1 > "$dest/$f"
done
"$utils/utt2spk_to_spk2utt.pl" "$dest/utt2spk" | sort -k1,1 > "$dest/spk2utt"
for f in $("$utils/data_dir_files.sh" "$src" spk); do
  "$utils/filter_scp.pl" "$dest/spk2utt" "$src/$f" | sort -k1,1 > "$dest/$f"
done
echo "$me: wrote $(wc -l < "$dest/utt2spk") utterances of $(wc -l < "$dest/spk2utt") speakers to $dest"
