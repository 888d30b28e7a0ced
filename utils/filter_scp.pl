#!/usr/bin/env perl
# Keep (or, with --exclude, drop) the lines of a Kaldi-style file whose N-th field
# is one of the keys (first fields) of an id list.  Output keeps the input order.
use strict;
use warnings;

my $usage = <<'END';
Usage: filter_scp.pl [--exclude] [-f N] <idlist> [<in.scp>] > out.scp
  Prints the lines of <in.scp> (default: stdin) whose N-th whitespace-separated
  field (default 1) is the first field of some line of <idlist>.
  --exclude   print the other lines instead
  -f N        compare field N (1-based) instead of the first field
Example: filter_scp.pl data/dev/utt2spk data/all/wav.scp > data/dev/wav.scp
END

my ($exclude, $field) = (0, 1);
while (@ARGV && $ARGV[0] =~ /^-./) {
  my $opt = shift @ARGV;
  if ($opt eq '--exclude') { $exclude = 1; }
  elsif ($opt eq '-f') { $field = shift @ARGV // ''; }
  elsif ($opt =~ /^-f(\d+)$/) { $field = $1; }
  elsif ($opt eq '-h' || $opt eq '--help') { print $usage; exit 0; }
  else { print STDERR "filter_scp.pl: unknown option $opt\n$usage"; exit 1; }
}
if ($field !~ /^[1-9]\d*$/) { print STDERR "filter_scp.pl: -f needs a positive integer\n$usage"; exit 1; }
if (@ARGV < 1 || @ARGV > 2) { print STDERR $usage; exit 1; }
my ($idlist, $input) = @ARGV;

my %wanted;
open my $ids, '<', $idlist or die "filter_scp.pl: cannot open $idlist: $!\n";
while (<$ids>) {
  my ($key) = split ' ';
  $wanted{$key} = 1 if defined $key;
}
close $ids;

my $in = \*STDIN;
if (defined $input && $input ne '-') {
  open $in, '<', $input or die "filter_scp.pl: cannot open $input: $!\n";
}
while (my $line = <$in>) {
  my @fields = split ' ', $line;
  my $match = @fields >= $field && exists $wanted{ $fields[$field - 1] };
  print $line if $match xor $exclude;
}
