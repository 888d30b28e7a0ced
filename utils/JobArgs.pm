# JobArgs: the command line shared by utils/run.pl and utils/slurm.pl.
#
#   <script> [options] [VAR=START:END] <log-file> <command> [<args>...]
#
# parse_job_args() reads options ("--opt value" or "--opt=value"; "_" and "-"
# are the same in names), the optional job range and the log file;
# command_line() joins the command's arguments the way Kaldi's launchers do:
# a word without whitespace is passed to bash as is (so a "|" or ">" argument,
# written \| on the caller's command line, is a pipe or redirection), a word with
# whitespace is quoted and stays one word.
package JobArgs;
use strict;
use warnings;
use Exporter qw(import);

our @EXPORT_OK = qw(usage_error parse_job_args command_line value_options);

my %VALUE_OPTIONS = map { $_ => 1 } qw(max-jobs-run gpu mem num-threads num-nodes time config);

sub usage_error {
    my ($me, $msg) = @_;
    if (open(my $self, '<', $0)) {    # the usage text is the comment at the top
        <$self>;                        # skip the #! line
        while (my $line = <$self>) {
            last unless $line =~ /^#/;
            $line =~ s/^# ?//;
            print STDERR $line;
        }
    }
    print STDERR "$me: $msg\n";
    exit 1;
}

# Returns a hash: opt (name => value, names spelled with "-"), var, first, last
# (a single job without VAR: first = last = 1, var undef), log_template, cmd_args.
sub parse_job_args {
    my ($me, @argv) = @_;
    my (%opt, $var, $first, $last);
    while (@argv) {
        my $arg = $argv[0];
        if ($arg =~ /^--([A-Za-z][\w-]*)(?:=(.*))?$/s) {
            my ($name, $value) = ($1, $2);
            shift @argv;
            (my $key = $name) =~ tr/_/-/;
            usage_error($me, "unknown option --$name") unless $VALUE_OPTIONS{$key};
            if (!defined $value) {
                usage_error($me, "option --$name needs a value") unless @argv;
                $value = shift @argv;
            }
            $opt{$key} = $value;
        } elsif (!defined $var && $arg =~ /^([A-Za-z_]\w*)=(\d+)(?::(\d+))?$/) {
            ($var, $first, $last) = ($1, $2, defined $3 ? $3 : $2);
            shift @argv;
            usage_error($me, "empty job range in $arg") if $first > $last;
        } else {
            last;
        }
    }
    usage_error($me, 'expected a log file and a command') if @argv < 2;
    my ($log_template, @cmd_args) = @argv;
    if (!defined $var) {
        ($first, $last) = (1, 1);
    } elsif ($last > $first && index($log_template, $var) < 0) {
        usage_error($me, "$var=$first:$last runs several jobs but the log file "
            . "'$log_template' does not contain $var");
    }
    return (opt => \%opt, var => $var, first => $first, last => $last,
            log_template => $log_template, cmd_args => \@cmd_args);
}

sub command_line {
    my @words = map {
        if (/^\S+$/) { $_ }
        else { (my $q = $_) =~ s/'/'\\''/g; "'$q'" }
    } @_;
    return join(' ', @words);
}

# The options that take a value (names spelled with "-"), for config-file checks.
sub value_options { return \%VALUE_OPTIONS }

1;
