#!/usr/bin/env bash
# Make a data directory consistent so that validate_data_dir.sh accepts it:
#  - drop empty/short lines and repeated keys (the first line for a key wins),
#  - keep only utterances present in utt2spk and in every other utterance-keyed
#    file (utt2*, *.scp, feats_shape, text) whose speaker is in every speaker-keyed
#    file (spk2* other than spk2utt),
#  - sort every file with LC_ALL=C, regenerate spk2utt from utt2spk and restrict
#    speaker-keyed files to the remaining speakers.
# The original files are copied to <data-dir>/.backup/ first.
set -euo pipefail
export LC_ALL=C
me=fix_data_dir.sh
utils=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() {
  cat <<END
Usage: $me <data-dir>
Keeps only the utterances present in every utterance-keyed file, sorts and
de-duplicates every file, regenerates spk2utt; originals go to <data-dir>/.backup/.
Prints how many lines each file lost and "kept K of N utterances (D dropped)".
END
}
case ${1:-} in -h|--help) usage; exit 0 ;; esac
[ $# -eq 1 ] || { usage >&2; exit 1; }
data=${1%/}
for f in wav.scp utt2spk; do
  [ -f "$data/$f" ] || { echo "$me: $data/$f: file is missing; cannot fix $data" >&2; exit 1; }
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mapfile -t utt_files < <("$utils/data_dir_files.sh" "$data" utt)
mapfile -t spk_files < <("$utils/data_dir_files.sh" "$data" spk)

mkdir -p "$data/.backup"
for f in "${utt_files[@]}" "${spk_files[@]}" spk2utt; do
  if [ -f "$data/$f" ]; then cp "$data/$f" "$data/.backup/$f"; fi
done

# clean <file> [<exact-number-of-fields>]: trimmed, well-formed lines with unique
# keys (first one wins), sorted, written to $tmp/<file>.
clean() {
  perl -e '
    my ($me, $file, $exact) = @ARGV;
    my (%seen, %conflict);
    while (my $line = <STDIN>) {
      $line =~ s/^\s+|\s+$//g;
      my @f = split " ", $line;
      next if $exact ? @f != $exact : @f < 2;
      if (!exists $seen{$f[0]}) { $seen{$f[0]} = $line; print "$line\n"; }
      elsif ($seen{$f[0]} ne $line && !$conflict{$f[0]}++) {
        print STDERR "$me: $file: key \x27$f[0]\x27 has several different lines; keeping the first\n";
      }
    }
  ' "$me" "$1" "${2:-}" < "$data/$1" | sort -k1,1 > "$tmp/$1"
}
clean utt2spk 2
for f in "${utt_files[@]}" "${spk_files[@]}"; do
  if [ "$f" != utt2spk ]; then clean "$f"; fi
done

# Utterances in every utterance-keyed file, and all utterances seen anywhere.
awk '{ print $1 }' "$tmp/utt2spk" > "$tmp/keep"
for f in "${utt_files[@]}"; do
  awk '{ print $1 }' "$tmp/$f" | comm -12 "$tmp/keep" - > "$tmp/keep.new"
  mv "$tmp/keep.new" "$tmp/keep"
done
for f in "${spk_files[@]}"; do   # ... whose speaker is in every speaker-keyed file
  "$utils/filter_scp.pl" -f 2 "$tmp/$f" "$tmp/utt2spk" | awk '{ print $1 }' \
    | comm -12 "$tmp/keep" - > "$tmp/keep.new"
  mv "$tmp/keep.new" "$tmp/keep"
done
for f in "${utt_files[@]}"; do awk '{ print $1 }' "$tmp/$f"; done | sort -u > "$tmp/all"

# write <file> <new-content>: install the new version and report lost lines.
write() {
  local before after
  before=$(awk 'END { print NR }' "$data/.backup/$1")
  mv "$2" "$data/$1"
  after=$(awk 'END { print NR }' "$data/$1")
  if [ "$before" -ne "$after" ]; then
    echo "$me: $1: dropped $((before - after)) of $before lines"
  fi
}
for f in "${utt_files[@]}"; do
  "$utils/filter_scp.pl" "$tmp/keep" "$tmp/$f" > "$tmp/$f.new"
  write "$f" "$tmp/$f.new"
done
"$utils/utt2spk_to_spk2utt.pl" "$data/utt2spk" | sort -k1,1 > "$data/spk2utt"
for f in "${spk_files[@]}"; do
  "$utils/filter_scp.pl" "$data/spk2utt" "$tmp/$f" > "$tmp/$f.new"
  write "$f" "$tmp/$f.new"
done

kept=$(wc -l < "$tmp/keep")
total=$(wc -l < "$tmp/all")
echo "$me: kept $kept of $total utterances ($((total - kept)) dropped)"
if [ "$kept" -eq 0 ]; then
  echo "$me: $data: no utterance is present in every file" >&2
  exit 1
fi
