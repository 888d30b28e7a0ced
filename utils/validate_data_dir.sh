#!/usr/bin/env bash
# Check that a Kaldi-style data directory is well formed and self-consistent.
# Every problem found is printed to stderr as "validate_data_dir.sh: <file>: <problem>";
# the exit status is 1 if there was any problem, 0 otherwise.
set -euo pipefail
export LC_ALL=C
me=validate_data_dir.sh
utils=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() {
  cat <<END
Usage: $me [--check-audio] [--no-wav] [--no-text] [--no-feats] <data-dir>
Checks that:
  - wav.scp, utt2spk and spk2utt exist;
  - every file is sorted by its first field (LC_ALL=C), has unique keys, no empty
    lines and at least two fields per line (utt2spk: exactly two);
  - every utterance-keyed file (utt2*, *.scp, feats_shape, text) has exactly the
    utterances of utt2spk, and spk2gender (any spk2* but spk2utt) exactly its speakers;
  - spk2utt agrees with utt2spk.
  --check-audio   also check that the files named in wav.scp, spk1.scp and noise1.scp
                  exist (entries ending in '|' are commands and are not checked).
Kaldi's options, with Kaldi's meaning:
  --no-wav        wav.scp is neither required nor checked.
  --no-text       text is not checked.
  --no-feats      feats.scp is not checked (it is never required here).
  --non-print, --no-spk-sort
                  accepted; this script checks neither printable text nor that
                  utterance ids sort by speaker, so they change nothing.
Relative paths are resolved against the current directory.
END
}

check_audio=false
unchecked=" "  # files an option excludes from every check
while [ $# -gt 0 ]; do
  case $1 in
    --check-audio) check_audio=true; shift ;;
    --no-wav) unchecked+="wav.scp "; shift ;;
    --no-text) unchecked+="text "; shift ;;
    --no-feats) unchecked+="feats.scp "; shift ;;
    --non-print|--no-spk-sort) shift ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "$me: unknown option $1" >&2; usage >&2; exit 1 ;;
    *) break ;;
  esac
done
[ $# -eq 1 ] || { usage >&2; exit 1; }
data=${1%/}
[ -d "$data" ] || { echo "$me: $data: no such directory" >&2; exit 1; }

failed=false
err() { echo "$me: $*" >&2; failed=true; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# check_format <file> [<exact-number-of-fields>]: report empty lines, short lines,
# keys out of LC_ALL=C order and repeated keys (first example and count of each).
check_format() {
  perl -e '
    my ($me, $file, $exact) = @ARGV;
    open my $in, "<", $file or die "$me: $file: cannot read: $!\n";
    my (@problems, %example, %count, %line_of, $prev);
    sub note { my ($p, $ex) = @_; push @problems, $p unless $count{$p}++; $example{$p} //= $ex; }
    while (my $line = <$in>) {
      chomp $line;
      if ($line =~ /^\s*$/) { note("empty line", "line $."); next; }
      note("line starts with whitespace", "line $.") if $line =~ /^\s/;
      my @f = split " ", $line;
      if ($exact) { note("expected exactly $exact fields", "line $.: $line") if @f != $exact; }
      else { note("fewer than 2 fields", "line $.: $line") if @f < 2; }
      my $key = $f[0];
      if (exists $line_of{$key}) { note("duplicate key", "\x27$key\x27 on lines $line_of{$key} and $."); }
      else { $line_of{$key} = $.; }
      note("not sorted (LC_ALL=C sort -k1,1)", "line $.: key \x27$key\x27 comes after \x27$prev\x27")
        if defined $prev && $key lt $prev;
      $prev = $key;
    }
    for my $p (@problems) {
      my $more = $count{$p} > 1 ? " (and " . ($count{$p} - 1) . " more)" : "";
      print STDERR "$me: $file: $p: $example{$p}$more\n";
    }
    print STDERR "$me: $file: no entries\n" unless defined $prev;
    exit(@problems || !defined $prev ? 1 : 0);
  ' "$me" "$@"
}

# compare_keys <expected-keys> <file> <what>: the sorted unique first fields of
# <file> must equal the sorted list <expected-keys>.
compare_keys() {
  local expected=$1 file=$2 what=$3 missing extra
  awk 'NF { print $1 }' "$file" | sort -u > "$tmp/keys"
  missing=$(comm -23 "$expected" "$tmp/keys")
  extra=$(comm -13 "$expected" "$tmp/keys")
  if [ -n "$missing" ]; then
    err "$file: $(wc -l <<< "$missing") $what(s) of utt2spk missing, e.g. '$(sed -n 1p <<< "$missing")'"
  fi
  if [ -n "$extra" ]; then
    err "$file: $(wc -l <<< "$extra") $what(s) not in utt2spk, e.g. '$(sed -n 1p <<< "$extra")'"
  fi
}

checked() { [[ $unchecked != *" $1 "* ]]; }

for f in wav.scp utt2spk spk2utt; do
  checked "$f" || continue
  [ -f "$data/$f" ] || err "$data/$f: file is missing"
done
[ -f "$data/utt2spk" ] || exit 1

# Utterance-keyed and speaker-keyed files present in the directory.
mapfile -t utt_files < <("$utils/data_dir_files.sh" "$data" utt | while read -r f; do
  if checked "$f"; then echo "$f"; fi; done)
mapfile -t spk_files < <("$utils/data_dir_files.sh" "$data" spk)

check_format "$data/utt2spk" 2 || failed=true
for f in "${utt_files[@]}" "${spk_files[@]}" spk2utt; do
  if [ "$f" != utt2spk ] && [ -f "$data/$f" ]; then check_format "$data/$f" || failed=true; fi
done

# Same utterances everywhere, same speakers in speaker-keyed files.
awk 'NF { print $1 }' "$data/utt2spk" | sort -u > "$tmp/utts"
awk 'NF >= 2 { print $2 }' "$data/utt2spk" | sort -u > "$tmp/spks"
for f in "${utt_files[@]}"; do
  if [ "$f" != utt2spk ]; then compare_keys "$tmp/utts" "$data/$f" utterance; fi
done
for f in "${spk_files[@]}"; do
  compare_keys "$tmp/spks" "$data/$f" speaker
done

# spk2utt must describe the same utterance -> speaker map as utt2spk.
if [ -f "$data/spk2utt" ]; then
  awk 'NF >= 2 { print $1, $2 }' "$data/utt2spk" | sort -u > "$tmp/u2s"
  awk 'NF >= 2' "$data/spk2utt" | "$utils/spk2utt_to_utt2spk.pl" > "$tmp/from_s2u"
  repeated=$(awk '{ print $1 }' "$tmp/from_s2u" | sort | uniq -d)
  if [ -n "$repeated" ]; then
    err "$data/spk2utt: utterance '$(sed -n 1p <<< "$repeated")' is listed more than once"
  fi
  sort -u "$tmp/from_s2u" > "$tmp/s2u"
  only_u2s=$(comm -23 "$tmp/u2s" "$tmp/s2u")
  only_s2u=$(comm -13 "$tmp/u2s" "$tmp/s2u")
  if [ -n "$only_u2s" ] || [ -n "$only_s2u" ]; then
    if [ -n "$only_u2s" ]; then ex="utt2spk has '$(sed -n 1p <<< "$only_u2s")' but spk2utt does not"
    else ex="spk2utt has '$(sed -n 1p <<< "$only_s2u")' but utt2spk does not"; fi
    n=$(comm -3 "$tmp/u2s" "$tmp/s2u" | wc -l)
    err "$data/spk2utt: disagrees with utt2spk on $n utterance/speaker pair(s), e.g. $ex" \
        "(regenerate it with utils/utt2spk_to_spk2utt.pl or utils/fix_data_dir.sh)"
  fi
fi

# Audio files must exist (commands ending in '|' are not checked).
if $check_audio; then
  for f in wav.scp spk1.scp noise1.scp; do
    [ -f "$data/$f" ] && checked "$f" || continue
    n_missing=0
    while read -r utt value || [ -n "$utt" ]; do
      [ -n "$utt" ] || continue
      case $value in *'|') continue ;; esac
      [ -e "$value" ] && continue
      # Kaldi archive offsets: "foo.ark:1234".
      if [[ $value =~ ^(.+):[0-9]+$ ]] && [ -e "${BASH_REMATCH[1]}" ]; then continue; fi
      n_missing=$((n_missing + 1))
      if [ $n_missing -le 5 ]; then err "$data/$f: utterance $utt: audio file not found: $value"; fi
    done < "$data/$f"
    if [ $n_missing -gt 5 ]; then err "$data/$f: $n_missing audio files not found in total"; fi
  done
fi

if $failed; then
  echo "$me: $data: validation failed" >&2
  exit 1
fi
echo "$me: Successfully validated data-directory $data"
