#!/usr/bin/env perl
# run.pl: run a command as one job or as an array of jobs on the local machine.
#
# Usage: run.pl [options] [VAR=START:END] <log-file> <command> [<args>...]
#   e.g. run.pl --max-jobs-run 4 JOB=1:10 exp/log/feats.JOB.log \
#            compute-feats --split JOB data/part.JOB.scp
#
# With VAR=START:END (any variable name, e.g. JOB or SPLIT) one job is run for
# every index from START to END; every occurrence of VAR in the log-file name
# and in the arguments is replaced by the index. Without it one job is run.
# The command runs under bash; as in Kaldi, an argument with whitespace stays one
# word (it is quoted) and a bare "|" argument (written \| by the caller) is a pipe.
# stdout and stderr of a job go to its log.
#
# Options:
#   --max-jobs-run M   run at most M jobs at once (default: the CPUs this process may use)
#   --gpu N, --mem X, --num_threads N, --num_nodes N, --time X, --config F
#                      accepted for compatibility with slurm.pl and ignored
# Options may be written "--opt value" or "--opt=value".
# Exit status: 0 if every job succeeded, 1 otherwise.
use strict;
use warnings;
use FindBin qw($RealBin);
use lib $RealBin;
use JobArgs qw(usage_error parse_job_args command_line);
use File::Basename qw(dirname);
use File::Path qw(make_path);
use POSIX qw(strftime);

my $me = 'run.pl';

my %args = parse_job_args($me, @ARGV);
my %opt = %{ $args{opt} };
my ($var, $first, $last, $log_template) = @args{qw(var first last log_template)};
my @cmd_args = @{ $args{cmd_args} };

my $max_jobs = defined $opt{'max-jobs-run'} ? $opt{'max-jobs-run'} : cpu_count();
usage_error($me, "--max-jobs-run must be a positive integer, not '$max_jobs'")
    unless $max_jobs =~ /^\d+$/ && $max_jobs > 0;

# The CPUs this process may use. GNU nproc also obeys OMP_NUM_THREADS, which path.sh
# sets to 1 for the torch in each job: asked with it, every job array ran one job at a time.
sub cpu_count {
    delete local @ENV{qw(OMP_NUM_THREADS OMP_THREAD_LIMIT)};
    my $n = `nproc 2>/dev/null`;
    return $1 if defined $n && $n =~ /^\s*(\d+)/ && $1 > 0;
    if (open(my $info, '<', '/proc/cpuinfo')) {
        $n = grep { /^processor\s*:/ } <$info>;
        return $n if $n > 0;
    }
    return 1;
}

sub substitute {
    my ($text, $index) = @_;
    $text =~ s/\Q$var\E/$index/g if defined $var;
    return $text;
}

sub now { return strftime('%a %b %e %H:%M:%S %Z %Y', localtime) }

# Runs job $index in the current (forked) process; returns its exit code.
sub run_job {
    my ($index) = @_;
    my $log = substitute($log_template, $index);
    my $cmd = substitute(command_line(@cmd_args), $index);
    my $dir = dirname($log);
    eval { make_path($dir) };
    if (!-d $dir) {
        print STDERR "$me: cannot create directory $dir\n";
        return 1;
    }
    open(my $out, '>', $log) or do {
        print STDERR "$me: cannot write $log: $!\n";
        return 1;
    };
    # From here on everything this process and the command print goes to the log.
    open(STDOUT, '>&', $out) or die "$me: cannot redirect stdout: $!\n";
    open(STDERR, '>&', $out) or die "$me: cannot redirect stderr: $!\n";
    close($out);
    $| = 1;
    (my $shown = $cmd) =~ s/\n/\n# /g;
    print "# $shown\n# Started at ", now(), "\n";
    my $start = time;
    system('bash', '-c', $cmd);
    my $status = $?;
    my $code = $status == -1 ? 127 : ($status & 127) ? 128 + ($status & 127) : $status >> 8;
    my $elapsed = time - $start;
    print "# Accounting: time=$elapsed threads=1\n";
    print "# Ended (code $code) at ", now(), ", elapsed time $elapsed seconds\n";
    return $code;
}

my %running;    # pid => job index
my @failed;     # job indices
sub reap_one {
    my $pid = waitpid(-1, 0);
    if ($pid < 0) {    # should not happen: treat the jobs we lost track of as failed
        push @failed, values %running;
        %running = ();
        return;
    }
    return unless exists $running{$pid};
    my $index = delete $running{$pid};
    push @failed, $index if $? != 0;
}

for my $index ($first .. $last) {
    reap_one() while keys(%running) >= $max_jobs;
    my $pid = fork();
    die "$me: fork failed: $!\n" unless defined $pid;
    if ($pid == 0) {
        my $code = run_job($index);
        exit($code == 0 ? 0 : 1);
    }
    $running{$pid} = $index;
}
reap_one() while %running;

if (@failed) {
    my $total = $last - $first + 1;
    my @logs = map { substitute($log_template, $_) } sort { $a <=> $b } @failed;
    print STDERR "$me: ", scalar(@failed), " / $total failed, log is in @logs\n";
    exit 1;
}
exit 0;
