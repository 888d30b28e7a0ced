#!/usr/bin/env perl
# slurm.pl: run a command as one job or as an array of jobs on a Slurm cluster.
#
# Usage: slurm.pl [options] [VAR=START:END] <log-file> <command> [<args>...]
#   e.g. slurm.pl --gpu 1 --mem 8G JOB=1:10 exp/log/decode.JOB.log \
#            decode --split JOB data/part.JOB.scp
#
# Same interface and log format as run.pl: every occurrence of VAR in the
# log-file name and in the arguments is replaced by the job index; arguments
# are joined as run.pl joins them (utils/JobArgs.pm). The jobs are
# submitted as one sbatch array (script: <logdir>/q/<name>.sh, Slurm output:
# <logdir>/q/<name>.<index>.out) and slurm.pl waits until squeue no longer
# lists the array; a job succeeded iff its log ends with "# Ended (code 0)".
#
# Options ("--opt value" or "--opt=value"):
#   --gpu N            sbatch --gres=gpu:N        (0: no GPU)
#   --mem X            sbatch --mem=X
#   --num_threads N    sbatch --cpus-per-task=N
#   --num_nodes N      sbatch --nodes=N --ntasks-per-node=1 (ESPnet's launcher: srun
#                      then starts one training process per node)
#   --time X           sbatch --time=X
#   --max-jobs-run M   array throttle: at most M tasks at once (--array=1-N%M)
#   --config F         file of "option value" lines giving defaults for the
#                      options above (gpu, mem, num_threads, time, max-jobs-run)
#                      and "partition NAME" (sbatch --partition=NAME)
# Environment: MERIT_SLURM_EXTRA_ARGS  extra sbatch arguments (shell words)
#              MERIT_SLURM_POLL        seconds between squeue polls (default 10)
# Exit status: 0 if every job succeeded, 1 otherwise.
use strict;
use warnings;
use FindBin qw($RealBin);
use lib $RealBin;
use JobArgs qw(usage_error parse_job_args command_line value_options);
use Cwd qw(getcwd);
use File::Basename qw(basename dirname);
use File::Path qw(make_path);
use File::Temp qw(tempfile);
use Text::ParseWords qw(shellwords);
use Time::HiRes qw(sleep);

my $me = 'slurm.pl';

sub fail { print STDERR "$me: $_[0]\n"; exit 1; }

my %args = parse_job_args($me, @ARGV);
my %opt = %{ $args{opt} };
my ($var, $first, $last, $log_template) = @args{qw(var first last log_template)};
my @cmd_args = @{ $args{cmd_args} };

# Defaults from --config: one "option value" per line, "#" starts a comment.
if (defined $opt{config}) {
    open(my $conf, '<', $opt{config}) or fail("cannot read config $opt{config}: $!");
    while (my $line = <$conf>) {
        $line =~ s/#.*//;
        next unless $line =~ /\S/;
        my ($name, $value) = $line =~ /^\s*(?:--)?([\w-]+)[\s=]+(\S+)\s*$/
            or fail("$opt{config}:$.: expected 'option value', got: $line");
        (my $key = $name) =~ tr/_/-/;
        fail("$opt{config}:$.: unknown option '$name'")
            unless $key eq 'partition' || (value_options()->{$key} && $key ne 'config');
        $opt{$key} = $value unless defined $opt{$key};    # command line wins
    }
    close($conf);
}
for my $key (qw(gpu num-threads max-jobs-run)) {
    fail("--$key must be a non-negative integer, not '$opt{$key}'")
        if defined $opt{$key} && $opt{$key} !~ /^\d+$/;
}

# File names: exp/log/decode.JOB.log -> exp/log/q/decode.{sh,<index>.out}
my $log_dir = dirname($log_template);
fail("the log directory '$log_dir' must not contain $var")
    if defined $var && index($log_dir, $var) >= 0;
my $queue_dir = "$log_dir/q";
my $name = basename($log_template);
$name =~ s/\.?\Q$var\E//g if defined $var;
$name =~ s/\.log$//;
$name = 'job' if $name eq '';
my $script = "$queue_dir/$name.sh";
eval { make_path($queue_dir) } unless -d $queue_dir;
fail("cannot create directory $queue_dir") unless -d $queue_dir;

sub job_log {
    my $log = $log_template;
    $log =~ s/\Q$var\E/$_[0]/g if defined $var;
    return $log;
}

sub shell_quote { my ($s) = @_; $s =~ s/'/'\\''/g; return "'$s'" }

# The batch script recomputes the command for its own array index, exactly
# as run.pl would, and writes the run.pl log format.
my $threads = $opt{'num-threads'} || 1;
my $cwd = getcwd();
my $substitute = defined $var
    ? "cmd=\${cmd_template//$var/\$index}\nlog=\${log_template//$var/\$index}"
    : "cmd=\$cmd_template\nlog=\$log_template";
open(my $sh, '>', $script) or fail("cannot write $script: $!");
print $sh <<"EOF";
#!/usr/bin/env bash
# Written by slurm.pl; run as a Slurm array task.
cd @{[shell_quote($cwd)]} || exit 1
index=\${SLURM_ARRAY_TASK_ID:?this script must run as a Slurm array task}
cmd_template=@{[shell_quote(command_line(@cmd_args))]}
log_template=@{[shell_quote($log_template)]}
$substitute
mkdir -p "\$(dirname "\$log")" || exit 1
{
  printf '%s\\n' "\$cmd" | sed 's/^/# /'
  echo "# Started at \$(date)"
} > "\$log" || exit 1
start=\$(date +%s)
bash -c "\$cmd" >> "\$log" 2>&1 < /dev/null
code=\$?
elapsed=\$((\$(date +%s) - start))
echo "# Accounting: time=\$elapsed threads=$threads" >> "\$log"
echo "# Ended (code \$code) at \$(date), elapsed time \$elapsed seconds" >> "\$log"
exit \$code
EOF
close($sh) or fail("cannot write $script: $!");
chmod(0755, $script);

# Stale logs from an earlier run must not be mistaken for this run's results.
unlink(job_log($_), "$queue_dir/$name.$_.out") for $first .. $last;

my $array = "$first-$last";
$array .= "%$opt{'max-jobs-run'}" if $opt{'max-jobs-run'};
my @sbatch = ('sbatch', '--parsable', "--array=$array", "--job-name=$name",
    "--output=$queue_dir/$name.%a.out");
push @sbatch, "--partition=$opt{partition}" if defined $opt{partition};
push @sbatch, "--gres=gpu:$opt{gpu}" if $opt{gpu};
push @sbatch, "--mem=$opt{mem}" if defined $opt{mem};
push @sbatch, "--cpus-per-task=$opt{'num-threads'}" if defined $opt{'num-threads'};
push @sbatch, "--nodes=$opt{'num-nodes'}", "--ntasks-per-node=1" if $opt{'num-nodes'};
push @sbatch, "--time=$opt{time}" if defined $opt{time};
push @sbatch, shellwords($ENV{MERIT_SLURM_EXTRA_ARGS}) if defined $ENV{MERIT_SLURM_EXTRA_ARGS};
push @sbatch, $script;

# Runs a command; returns (exit status, stdout, stderr).
sub capture {
    my @command = @_;
    my ($err_fh, $err_file) = tempfile(UNLINK => 1);
    my $pid = open(my $out_fh, '-|');
    fail("fork failed: $!") unless defined $pid;
    if ($pid == 0) {
        open(STDERR, '>&', $err_fh) or exit 127;
        open(STDIN, '<', '/dev/null');
        exec { $command[0] } @command or do { print STDERR "cannot run $command[0]: $!\n"; exit 127 };
    }
    my $out = do { local $/; <$out_fh> };
    close($out_fh);
    my $status = $?;
    seek($err_fh, 0, 0);
    my $err = do { local $/; <$err_fh> };
    close($err_fh);
    return ($status, $out // '', $err // '');
}

my ($status, $out, $err) = capture(@sbatch);
if ($status != 0 || $out !~ /^\s*(\d+)/) {
    print STDERR $err;
    fail("sbatch failed (exit status " . ($status >> 8) . "): @sbatch")
        if $status != 0;
    fail("cannot parse a job id from the output of sbatch: $out");
}
my $job_id = $1;

# Wait until squeue no longer lists the array. An unknown id means it is long
# gone; other squeue errors are retried for a while.
my $poll = $ENV{MERIT_SLURM_POLL} // 10;
my $squeue_errors = 0;
while (1) {
    my ($s, $listing, $problem) = capture('squeue', '-h', '-j', $job_id);
    if ($s == 0) {
        $squeue_errors = 0;
        last unless $listing =~ /\S/;
    } else {
        last if $problem =~ /invalid job id/i;
        print STDERR "$me: squeue failed: $problem";
        last if ++$squeue_errors >= 30;
    }
    sleep($poll);
}

sub exit_code {    # from "# Ended (code N)" in a job's log; undef if absent
    open(my $fh, '<', job_log($_[0])) or return undef;
    my $code;
    while (my $line = <$fh>) { $code = $1 if $line =~ /^# Ended \(code (\d+)\)/ }
    return $code;
}
my %code = map { $_ => exit_code($_) } $first .. $last;
if (grep { !defined $code{$_} } keys %code) {
    sleep($poll < 5 ? $poll : 5);    # give a shared file system time to catch up
    $code{$_} //= exit_code($_) for keys %code;
}
my @failed = grep { !defined $code{$_} || $code{$_} != 0 } $first .. $last;
exit 0 unless @failed;

# Slurm's own view of the failed tasks (e.g. TIMEOUT, OUT_OF_MEMORY), if sacct works.
my %state;
my ($s, $accounting) = capture('sacct', '-n', '-P', '-j', $job_id, '-o', 'JobID,State,ExitCode');
if ($s == 0) {
    for (split /\n/, $accounting) {
        $state{$1} = $2 if /^\Q$job_id\E_(\d+)\|([^|]*)\|/;
    }
}
my @logs = map { job_log($_) . (defined $state{$_} ? " [$state{$_}]" : '') } @failed;
my @lost = grep { !defined $code{$_} } @failed;
print STDERR "$me: ", scalar(@failed), " / ", $last - $first + 1, " failed, log is in @logs\n";
print STDERR "$me: no exit status in the log of job(s) @lost; see $queue_dir/$name.<index>.out\n"
    if @lost;
exit 1;
