#!/usr/bin/env bash
# Copy a data directory, optionally renaming utterance and speaker ids by adding
# a prefix and/or suffix.  Utterance ids are renamed in the key of every
# utterance-keyed file (utt2*, *.scp, feats_shape, text); speaker ids in the
# second field of utt2spk and the key of speaker-keyed files (spk2* but spk2utt).
# Values (paths, labels, ...) are copied unchanged.  Output is sorted with
# LC_ALL=C and spk2utt is regenerated.  Data files already in <dest-dir> are
# moved to <dest-dir>/.backup/.
set -euo pipefail
export LC_ALL=C
me=copy_data_dir.sh
utils=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() {
  cat <<END
Usage: $me [options] <src-dir> <dest-dir>
  --utt-prefix P   prepend P to every utterance id
  --utt-suffix S   append S to every utterance id
  --spk-prefix P   prepend P to every speaker id
  --spk-suffix S   append S to every speaker id
Example: $me --utt-prefix noisy- --spk-prefix noisy- data/train data/train_noisy
END
}

utt_prefix= utt_suffix= spk_prefix= spk_suffix=
while [ $# -gt 0 ]; do
  case $1 in
    --utt-prefix|--utt-suffix|--spk-prefix|--spk-suffix)
      [ $# -ge 2 ] || { usage >&2; exit 1; }
      name=${1#--}; printf -v "${name//-/_}" '%s' "$2"; shift 2 ;;
    --utt-prefix=*|--utt-suffix=*|--spk-prefix=*|--spk-suffix=*)
      name=${1%%=*}; name=${name#--}; printf -v "${name//-/_}" '%s' "${1#*=}"; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "$me: unknown option $1" >&2; usage >&2; exit 1 ;;
    *) break ;;
  esac
done
[ $# -eq 2 ] || { usage >&2; exit 1; }
src=${1%/} dest=${2%/}
[ -f "$src/utt2spk" ] || { echo "$me: $src/utt2spk: file is missing" >&2; exit 1; }
for id in "$utt_prefix" "$utt_suffix" "$spk_prefix" "$spk_suffix"; do
  [[ ! $id =~ [[:space:]] ]] || { echo "$me: prefixes and suffixes may not contain whitespace" >&2; exit 1; }
done
mkdir -p "$dest"
[ "$(cd "$src" && pwd)" != "$(cd "$dest" && pwd)" ] \
  || { echo "$me: <src-dir> and <dest-dir> must differ" >&2; exit 1; }

for f in $("$utils/data_dir_files.sh" "$dest" all); do
  mkdir -p "$dest/.backup"; mv "$dest/$f" "$dest/.backup/"
done

# rename_ids <key-prefix> <key-suffix> [<field2-prefix> <field2-suffix>] < in > out
rename_ids() {
  P1=$1 S1=$2 P2=${3:-} S2=${4:-} perl -pe '
    s/^(\s*)(\S+)/$1$ENV{P1}$2$ENV{S1}/;
    s/^(\s*\S+\s+)(\S+)/$1$ENV{P2}$2$ENV{S2}/ if $ENV{P2} ne "" || $ENV{S2} ne "";
  '
}
for f in $("$utils/data_dir_files.sh" "$src" utt); do
  if [ "$f" = utt2spk ]; then
    rename_ids "$utt_prefix" "$utt_suffix" "$spk_prefix" "$spk_suffix" < "$src/$f" | sort -k1,1 > "$dest/$f"
  else
    rename_ids "$utt_prefix" "$utt_suffix" < "$src/$f" | sort -k1,1 > "$dest/$f"
  fi
done
for f in $("$utils/data_dir_files.sh" "$src" spk); do
  rename_ids "$spk_prefix" "$spk_suffix" < "$src/$f" | sort -k1,1 > "$dest/$f"
done
"$utils/utt2spk_to_spk2utt.pl" "$dest/utt2spk" | sort -k1,1 > "$dest/spk2utt"
echo "$me: copied $src to $dest"
