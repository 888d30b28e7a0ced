#!/usr/bin/env perl
# Convert spk2utt lines ("<spk> <utt1> <utt2> ...") into utt2spk lines ("<utt> <spk>"),
# one per utterance, in the order the utterances appear in the input.
use strict;
use warnings;

my $usage = <<'END';
Usage: spk2utt_to_utt2spk.pl [spk2utt] > utt2spk
Reads spk2utt from the named file (or stdin) and writes utt2spk to stdout.
END

if (@ARGV && $ARGV[0] =~ /^(-h|--help)$/) { print $usage; exit 0; }
if (@ARGV > 1 || (@ARGV && $ARGV[0] =~ /^-./)) { print STDERR $usage; exit 1; }

while (my $line = <>) {
  my ($spk, @utts) = split ' ', $line;
  die "spk2utt_to_utt2spk.pl: line $.: expected '<spk> <utt1> [<utt2> ...]', got: $line"
    unless @utts;
  print "$_ $spk\n" for @utts;
}
