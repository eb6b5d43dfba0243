package DKTest;

# Shared helpers for the DaemonKit tests: where the library is, temp dirs
# that are removed, children run in a fork with their result sent back,
# every process started tracked by pid and killed at the end, and a tiny
# HTTP client on 127.0.0.1.

use strict;
use warnings;
use Cwd ();
use File::Spec ();
use File::Temp ();
use FindBin ();
use IO::Socket::INET ();
use POSIX ();
use Time::HiRes ();
use Exporter 'import';

our @EXPORT = qw(tempdir_clean in_child track_pid wait_until http_get read_file
                 spawn_perl wait_exit kill_tracked alive perl_cmd run_perl);

my $T    = Cwd::abs_path($FindBin::Bin);
our $DIST = Cwd::abs_path("$T/..");
our $REPO = Cwd::abs_path("$DIST/../..");
our $LIB;

BEGIN {
    # The library the tests load: $DAEMONKIT_LIB, else this tree's build, else the system's.
    my $dist = Cwd::abs_path("$FindBin::Bin/..");
    my $built = Cwd::abs_path("$dist/../../target/lib/libdaemonkit.so");
    $LIB = $ENV{DAEMONKIT_LIB} // ($built && -e $built ? $built : undef);
    $ENV{DAEMONKIT_LIB} = $LIB if defined $LIB;     # children (perl -e ...) use the same one
}

# The modules under test: blib/lib when run by `make test` (the built copy, with the
# library directory Makefile.PL recorded), else the source tree's lib/.
our $MODLIB;
BEGIN {
    ($MODLIB) = grep { m{(?:^|/)blib/lib/?\z} } @INC;
    $MODLIB = defined $MODLIB ? Cwd::abs_path($MODLIB) : Cwd::abs_path("$FindBin::Bin/../lib");
}
use lib $MODLIB;
use DaemonKit::FFI ();
DaemonKit::FFI::load($LIB);

my @TRACKED;      # pids we started (or learned), killed by pid at the end
my @TEMPDIRS;
our $OWNER;
BEGIN { $OWNER = $$ }

=head1 DKTest

=cut

sub tempdir_clean {
    my $d = File::Temp::tempdir('dk-perl-t-XXXXXX', TMPDIR => 1, CLEANUP => 0);
    push @TEMPDIRS, $d;
    return $d;
}

# Remembers a pid with its start time, so that the final kill never hits a
# recycled pid.
sub track_pid {
    for my $pid (grep { defined && $_ > 1 } @_) {
        my $start = _starttime($pid);
        push @TRACKED, [$pid, $start] if defined $start;
    }
    return $_[0];
}

sub _starttime {
    my ($pid) = @_;
    my $st = read_file("/proc/$pid/stat") // return undef;
    $st =~ s/^.*\)\s+//s;
    return (split ' ', $st)[19];
}

sub alive {
    my ($pid) = @_;
    return 0 unless $pid && $pid > 1;
    open(my $fh, '<', "/proc/$pid/stat") or return 0;
    my $st = <$fh>;
    close $fh;
    return 0 unless defined $st;
    my ($state) = $st =~ /\)\s+(\S)/;
    return defined $state && $state ne 'Z' && $state ne 'X';
}

sub wait_until {
    my ($cond, $timeout, $step) = @_;
    $timeout //= 5;
    $step //= 0.02;
    my $deadline = Time::HiRes::time() + $timeout;
    while (1) {
        my $r = $cond->();
        return $r if $r;
        return undef if Time::HiRes::time() > $deadline;
        Time::HiRes::sleep($step);
    }
}

# Runs $code in a forked child; returns what it returned (a string) and its
# wait status. The child never returns into the test (POSIX::_exit).
sub in_child {
    my ($code, %o) = @_;
    pipe(my $r, my $w) or die "pipe: $!";
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        close $r;
        my $out = eval { $code->() };
        $out = "DIED: $@" unless defined $out || !$@;
        $out //= '';
        syswrite($w, $out);
        close $w;
        POSIX::_exit($o{exit} // 0);
    }
    track_pid($pid);
    close $w;
    my $out = '';
    my $deadline = time + ($o{timeout} // 20);
    while (1) {
        my $rin = '';
        vec($rin, fileno($r), 1) = 1;
        my $n = select(my $rout = $rin, undef, undef, 1);
        if ($n > 0) {
            my $got = sysread($r, my $buf, 65536);
            last unless $got;
            $out .= $buf;
        }
        if (time > $deadline) { kill 'KILL', $pid; $out .= "TIMEOUT"; last }
    }
    close $r;
    waitpid($pid, 0);
    return wantarray ? ($out, $?) : $out;
}

sub perl_cmd { ($^X, (map { "-I$_" } $MODLIB, "$T/lib")) }

# Runs perl -e CODE (binding on @INC) and returns its stdout+stderr and wait status.
sub run_perl {
    my ($code, %o) = @_;
    my $pid = open(my $fh, '-|') // die "fork: $!";
    if (!$pid) {
        open(STDERR, '>&', \*STDOUT);
        open(STDIN, '<', '/dev/null');
        %ENV = (%ENV, %{ $o{env} || {} });
        delete $ENV{$_} for @{ $o{unset} || [] };
        exec(perl_cmd(), @{ $o{switches} || [] }, '-e', $code, @{ $o{args} || [] }) or POSIX::_exit(127);
    }
    local $/;
    my $out = <$fh>;
    close $fh;
    return wantarray ? ($out // '', $?) : ($out // '');
}

# Starts perl with the binding on @INC; stdout/stderr to files. Returns the pid.
sub spawn_perl {
    my (%o) = @_;
    my @cmd = (perl_cmd(), @{ $o{args} });
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open(STDIN, '<', '/dev/null');
        open(STDOUT, '>>', $o{stdout} // '/dev/null') or POSIX::_exit(127);
        open(STDERR, '>>', $o{stderr} // '/dev/null') or POSIX::_exit(127);
        %ENV = (%ENV, %{ $o{env} || {} });
        exec @cmd or POSIX::_exit(127);
    }
    return track_pid($pid);
}

# Waits for our child; returns its wait status, or undef on timeout (then it is killed).
sub wait_exit {
    my ($pid, $timeout) = @_;
    my $st;
    my $ok = wait_until(sub {
        my $r = waitpid($pid, POSIX::WNOHANG());
        if ($r == $pid) { $st = $?; return 1 }
        return $r < 0;
    }, $timeout // 10);
    unless ($ok) {
        kill 'KILL', $pid;
        waitpid($pid, 0);
        return undef;
    }
    return $st;
}

sub read_file {
    my ($path) = @_;
    open(my $fh, '<', $path) or return undef;
    local $/;
    my $s = <$fh>;
    close $fh;
    return $s;
}

# GET on 127.0.0.1:$port; returns (status, body) or () on failure.
sub http_get {
    my ($port, $path, $timeout) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp',
                                  Timeout => $timeout // 3) or return;
    $s->autoflush(1);
    print $s "GET $path HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    my $resp = '';
    my $deadline = Time::HiRes::time() + ($timeout // 3);
    while (Time::HiRes::time() < $deadline) {
        my $rin = '';
        vec($rin, fileno($s), 1) = 1;
        my $n = select(my $rout = $rin, undef, undef, 0.2);
        next unless $n;
        my $got = sysread($s, my $buf, 65536);
        last unless $got;
        $resp .= $buf;
    }
    close $s;
    my ($status) = $resp =~ m{^HTTP/1\.[01] (\d+)} or return;
    my (undef, $body) = split /\r\n\r\n/, $resp, 2;
    return ($status, $body // '');
}

sub kill_tracked {
    for my $t (@TRACKED) {
        my ($pid, $start) = @$t;
        my $now = _starttime($pid);
        kill 'KILL', $pid if alive($pid) && defined $now && $now eq $start;
    }
    for my $t (@TRACKED) {
        waitpid($t->[0], POSIX::WNOHANG());
    }
    @TRACKED = ();
}

END {
    if ($$ == $OWNER) {
        my $status = $?;
        kill_tracked();
        File::Path::rmtree($_) for grep { -d } @TEMPDIRS;
        $? = $status;
    }
}

require File::Path;

1;
