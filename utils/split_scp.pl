#!/usr/bin/env perl
# Split a Kaldi-style file into N pieces.
#
# Without --utt2spk the pieces are contiguous runs of lines whose sizes differ by
# at most one.  With --utt2spk every speaker's lines go to a single piece: speakers
# (taken in order of first appearance) are cut into N contiguous groups, each cut
# placed where the running line count is closest to an equal share.  Each piece
# keeps the lines in input order.
use strict;
use warnings;

my $usage = <<'END';
Usage: split_scp.pl [--utt2spk=<utt2spk>] <in.scp> <out1.scp> [<out2.scp> ...]
  Splits <in.scp> into as many roughly equal pieces as output files are given.
  --utt2spk=FILE   keep all lines of one speaker (looked up by the first field)
                   in the same piece
Example: split_scp.pl --utt2spk=data/train/utt2spk data/train/wav.scp wav.{1,2,3}.scp
END

my $utt2spk;
while (@ARGV && $ARGV[0] =~ /^--./) {
  my $opt = shift @ARGV;
  if ($opt =~ /^--utt2spk=(.+)$/) { $utt2spk = $1; }
  elsif ($opt eq '--utt2spk' && @ARGV) { $utt2spk = shift @ARGV; }
  elsif ($opt eq '--help') { print $usage; exit 0; }
  else { print STDERR "split_scp.pl: bad option $opt\n$usage"; exit 1; }
}
if (@ARGV && $ARGV[0] eq '-h') { print $usage; exit 0; }
if (@ARGV < 2) { print STDERR $usage; exit 1; }
my ($input, @outputs) = @ARGV;
my $n = @outputs;

open my $in, '<', $input or die "split_scp.pl: cannot open $input: $!\n";
my @lines = <$in>;
close $in;
die "split_scp.pl: cannot split $input (" . @lines . " lines) into $n pieces\n"
  if @lines < $n;

my @piece_of_line;    # piece index (0-based) for every input line
if (!defined $utt2spk) {
  my $total = @lines;
  for my $k (0 .. $n - 1) {
    my ($from, $to) = (int($k * $total / $n), int(($k + 1) * $total / $n));
    $piece_of_line[$_] = $k for $from .. $to - 1;
  }
} else {
  my %spk_of;
  open my $u2s, '<', $utt2spk or die "split_scp.pl: cannot open $utt2spk: $!\n";
  while (<$u2s>) {
    my ($utt, $spk) = split ' ';
    $spk_of{$utt} = $spk if defined $spk;
  }
  close $u2s;

  my (@speakers, %count);
  for my $i (0 .. $#lines) {
    my ($utt) = split ' ', $lines[$i];
    die "split_scp.pl: $input: line " . ($i + 1) . " has no key\n" unless defined $utt;
    my $spk = $spk_of{$utt};
    die "split_scp.pl: utterance $utt is not in $utt2spk\n" unless defined $spk;
    push @speakers, $spk unless $count{$spk}++;
  }
  my $num_spk = @speakers;
  die "split_scp.pl: cannot split $input by speaker into $n pieces: only $num_spk speakers\n"
    if $num_spk < $n;

  # $cum[$i] = number of lines belonging to the first $i speakers.
  my @cum = (0);
  push @cum, $cum[-1] + $count{$_} for @speakers;
  my $total = $cum[-1];

  # Choose cut points 0 = $cut[0] < $cut[1] < ... < $cut[$n] = $num_spk so that
  # every piece gets at least one speaker and cut k lies near k/n of the lines.
  my @cut = (0);
  for my $k (1 .. $n - 1) {
    my $target = $total * $k / $n;
    my ($lo, $hi) = ($cut[-1] + 1, $num_spk - ($n - $k));
    my $c = $lo;
    $c++ while $c < $hi && $cum[$c] < $target;
    $c-- if $c > $lo && $target - $cum[$c - 1] < $cum[$c] - $target;
    push @cut, $c;
  }
  push @cut, $num_spk;

  my %piece_of_spk;
  for my $k (0 .. $n - 1) {
    $piece_of_spk{ $speakers[$_] } = $k for $cut[$k] .. $cut[$k + 1] - 1;
  }
  for my $i (0 .. $#lines) {
    my ($utt) = split ' ', $lines[$i];
    $piece_of_line[$i] = $piece_of_spk{ $spk_of{$utt} };
  }
}

my @handles;
for my $out (@outputs) {
  open my $fh, '>', $out or die "split_scp.pl: cannot write $out: $!\n";
  push @handles, $fh;
}
print { $handles[ $piece_of_line[$_] ] } $lines[$_] for 0 .. $#lines;
for my $k (0 .. $n - 1) {
  close $handles[$k] or die "split_scp.pl: error writing $outputs[$k]: $!\n";
}
