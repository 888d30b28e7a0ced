#!/usr/bin/env perl
# Convert utt2spk lines ("<utt> <spk>") into spk2utt lines ("<spk> <utt1> <utt2> ...").
# Speakers are printed in the order of their first utterance, and each speaker's
# utterances keep the order they have in the input.  Pipe the result through
# "LC_ALL=C sort -k1,1" when a sorted spk2utt is needed.
use strict;
use warnings;

my $usage = <<'END';
Usage: utt2spk_to_spk2utt.pl [utt2spk] > spk2utt
Reads utt2spk from the named file (or stdin) and writes spk2utt to stdout.
Each input line must have exactly two fields.
END

if (@ARGV && $ARGV[0] =~ /^(-h|--help)$/) { print $usage; exit 0; }
if (@ARGV > 1 || (@ARGV && $ARGV[0] =~ /^-./)) { print STDERR $usage; exit 1; }

my (@speakers, %utts);
while (my $line = <>) {
  my @fields = split ' ', $line;
  die "utt2spk_to_spk2utt.pl: line $.: expected '<utt> <spk>', got: $line"
    unless @fields == 2;
  my ($utt, $spk) = @fields;
  push @speakers, $spk unless exists $utts{$spk};
  push @{ $utts{$spk} }, $utt;
}
print join(' ', $_, @{ $utts{$_} }), "\n" for @speakers;
