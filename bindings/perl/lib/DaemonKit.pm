package DaemonKit;

use strict;
use warnings;
use Config ();
use Cwd ();
use Errno ();
use File::Spec ();
use IO::Handle ();
use POSIX ();
use Scalar::Util ();

use DaemonKit::FFI ();
use DaemonKit::Error ();

our $VERSION = '0.1.0';

# What a re-exec or an upgrade should run, resolved now: at `use DaemonKit`
# time the working directory is still the one the program was started in,
# and @ARGV has not been consumed by Getopt yet.
our @SELF_ARGV = _resolve_self_argv();

# ---------------------------------------------------------------------------
# constants (the #defines of include/daemonkit.h; t/header.t compares them)

use constant {
    DK_VERSION                  => 256,
    DK_VERSION_MAJOR            => 0,
    DK_PIDFILE_RUNNING          => 1,
    DK_PIDFILE_STALE            => 0,
    DK_PIDFILE_FOREIGN          => 2,
    DK_ERR_PIDFILE_FOREIGN      => -16,
    DK_ERR_UNKNOWN_USER         => -3,
    DK_ERR_UNKNOWN_GROUP        => -2,
    DK_ERR_NOT_ROOT             => -1,
    DK_ERR_VERIFY               => -131,
    DK_RLIM_INFINITY            => 18446744073709551615,
    DK_RLIMIT_CORE              => 4,
    DK_RLIMIT_NPROC             => 6,
    DK_RLIMIT_NOFILE            => 7,
    DK_RLIMIT_AS                => 9,
    DK_LOG_STDOUT               => 1,
    DK_LOG_STDERR               => 2,
    DK_SIGNAL_NO_RESTART        => 1,
    DK_PRIVILEGES_NO_NEW_PRIVS  => 1,
    DK_PRIVILEGES_DROP_BOUNDING => 2,
    DK_LISTEN_REUSEPORT         => 1,
    DK_LISTEN_INHERIT           => 2,
    DK_LISTEN_FDS_UNSET         => 1,
    DK_LISTEN_FDS_START         => 3,
    DK_DAEMON_FOREGROUND        => 1,
    DK_DAEMON_KEEP_STDIO        => 2,
    DK_DAEMON_NO_CLOSE_FDS      => 4,
    DK_DAEMON_NO_CHDIR          => 8,
    DK_DAEMON_NO_SIGNAL_RESET   => 16,
    DK_ROLE_DAEMON              => 1,
    DK_ROLE_FOREGROUND          => 2,
    DK_ROLE_UPGRADE             => 3,
    DK_EVENT_SPAWNED            => 1,
    DK_EVENT_EXITED             => 2,
    DK_EVENT_RESPAWN_DELAYED    => 3,
    DK_EVENT_WORKER_READY       => 4,
    DK_EVENT_READY              => 5,
    DK_EVENT_RELOADING          => 6,
    DK_EVENT_RELOADED           => 7,
    DK_EVENT_STOPPING           => 8,
    DK_EVENT_KILLED             => 9,
    DK_EVENT_UPGRADE_STARTED    => 10,
    DK_EVENT_UPGRADE_READY      => 11,
    DK_EVENT_UPGRADE_FAILED     => 12,
    DK_EVENT_LOG_REOPENED       => 13,
    DK_EVENT_WORKERS_CHANGED    => 14,
    DK_EVENT_WORKER_FAILED      => 15,
    DK_EVENT_RELOAD_FAILED      => 16,
    DK_EVENT_GAVE_UP            => 17,
    DK_SUPERVISOR_GAVE_UP       => 2,
    DK_SUPERVISOR_REAP_ALL      => 1,
    DK_SUPERVISOR_ONCE          => 2,
    DK_SUPERVISOR_SIGNAL_GROUP  => 4,
    DK_SUPERVISOR_STOPPED       => 0,
    DK_SUPERVISOR_UPGRADED      => 1,
    DK_SUPERVISOR_MAX_WORKERS   => 256,
};

our @CONSTANTS = qw(
    DK_VERSION DK_VERSION_MAJOR DK_PIDFILE_RUNNING DK_PIDFILE_STALE
    DK_PIDFILE_FOREIGN DK_ERR_PIDFILE_FOREIGN
    DK_ERR_UNKNOWN_USER DK_ERR_UNKNOWN_GROUP DK_ERR_NOT_ROOT DK_ERR_VERIFY
    DK_PRIVILEGES_NO_NEW_PRIVS DK_PRIVILEGES_DROP_BOUNDING
    DK_RLIM_INFINITY DK_RLIMIT_CORE DK_RLIMIT_NPROC DK_RLIMIT_NOFILE DK_RLIMIT_AS
    DK_LOG_STDOUT DK_LOG_STDERR DK_SIGNAL_NO_RESTART DK_LISTEN_REUSEPORT DK_LISTEN_INHERIT
    DK_LISTEN_FDS_UNSET DK_LISTEN_FDS_START
    DK_DAEMON_FOREGROUND DK_DAEMON_KEEP_STDIO DK_DAEMON_NO_CLOSE_FDS DK_DAEMON_NO_CHDIR
    DK_DAEMON_NO_SIGNAL_RESET DK_ROLE_DAEMON DK_ROLE_FOREGROUND DK_ROLE_UPGRADE
    DK_EVENT_SPAWNED DK_EVENT_EXITED DK_EVENT_RESPAWN_DELAYED DK_EVENT_WORKER_READY
    DK_EVENT_READY DK_EVENT_RELOADING DK_EVENT_RELOADED DK_EVENT_STOPPING DK_EVENT_KILLED
    DK_EVENT_UPGRADE_STARTED DK_EVENT_UPGRADE_READY DK_EVENT_UPGRADE_FAILED
    DK_EVENT_LOG_REOPENED DK_EVENT_WORKERS_CHANGED DK_EVENT_WORKER_FAILED DK_EVENT_RELOAD_FAILED
    DK_EVENT_GAVE_UP DK_SUPERVISOR_GAVE_UP DK_SUPERVISOR_REAP_ALL DK_SUPERVISOR_ONCE
    DK_SUPERVISOR_SIGNAL_GROUP
    DK_SUPERVISOR_STOPPED DK_SUPERVISOR_UPGRADED DK_SUPERVISOR_MAX_WORKERS
);

our @FUNCTIONS = qw(
    version version_string strerror
    daemonize ready fail
    privileges_drop privileges_drop_caps cap_from_name drop_privileges user_lookup group_lookup
    rlimit_get rlimit_set rlimit_nofile rlimit_disable_core
    fd_set_cloexec fd_close_from log_open log_reopen
    signal_open signal_next signal_wait signal_close signal_reset_child
    signal_ignore_sigpipe signal_number signal_name
    listen_tcp listen_unix socket_port socket_name listen_fds
    notify notify_reloading notify_stopping notify_fd watchdog_usec
    fd_send fd_recv
    reexec upgrade self_argv message_of
);

our @EXPORT_OK = (@FUNCTIONS, @CONSTANTS);
our %EXPORT_TAGS = (
    all       => [@FUNCTIONS, @CONSTANTS],
    functions => [@FUNCTIONS],
    constants => [@CONSTANTS],
);

sub import {
    my ($class, @args) = @_;
    my @names;
    while (@args) {
        my $a = shift @args;
        if ($a eq 'lib') {
            my $path = shift @args;
            DaemonKit::FFI::load($path);
        } else {
            push @names, $a;
        }
    }
    require Exporter;
    local $Exporter::ExportLevel = $Exporter::ExportLevel + 1;
    Exporter::import($class, @names);
}

=head1 NAME

DaemonKit - daemon process plumbing for Perl (daemonize, PID files, privileges, signals, prefork supervision) on libdaemonkit

=head1 SYNOPSIS

    use DaemonKit qw(:all);                       # or: use DaemonKit lib => '/opt/lib/libdaemonkit.so', qw(:all);
    use DaemonKit::PidFile;

    my $lfd = listen_tcp('127.0.0.1:8080');       # croaks "127.0.0.1:8080: Address already in use"
    my $pf  = DaemonKit::PidFile->open('/run/app.pid');   # "... daemon already running (PID: 4242)"
    daemonize(keep => [$lfd], umask => 022);      # the launcher exits here with the daemon's verdict
    eval {
        log_open('/var/log/app.log');
        $pf->write;
        rlimit_disable_core();
        drop_privileges('www-data');
        1;
    } or do { fail(1, message_of($@)); exit 1 };
    my $sigfd = signal_open(qw(TERM INT HUP USR1));
    # ... event loop watching $lfd and $sigfd (see DaemonKit::IOAsync) ...
    ready();

=head1 DESCRIPTION

An idiomatic Perl API over the whole C ABI of libdaemonkit
(F<include/daemonkit.h>), attached with L<FFI::Platypus> (C<< api => 2 >>).
Every C function has a wrapper here or in L<DaemonKit::PidFile> and
L<DaemonKit::Supervisor>; L<DaemonKit::IOAsync> plugs the signal fd and
prefork workers into L<IO::Async>.

=head2 Finding the library

The first call loads F<libdaemonkit.so> from, in this order: the path given
with C<< use DaemonKit lib => $path >> (or L<DaemonKit::FFI/load>),
C<$ENV{DAEMONKIT_LIB}>, or the system library path.

=head2 Errors

A failing call sets C<$!> to the errno and croaks with a L<DaemonKit::Error>
whose message names the object and the cause, e.g.
C<pid file /tmp/x.pid: daemon already running (PID: 4242)>,
C<127.0.0.1:8080: Address already in use>, C<unknown user 'www'>.

=head2 Startup order

    parse config -> listen_tcp -> DaemonKit::PidFile->open -> daemonize
    -> log_open -> $pf->write -> rlimits -> drop_privileges -> signal_open
    -> start the app or DaemonKit::Supervisor -> ready

Binding and locking happen before the fork, so "port in use" and "already
running" reach the terminal; later failures go through L</fail> to the
launcher.

=head2 Units

Timeouts are in seconds (fractions allowed) throughout the Perl API.

=cut

# ---------------------------------------------------------------------------
# internal helpers

sub _throw {
    my ($op, $r, $message, %extra) = @_;
    DaemonKit::Error->throw(message => $message, errno => ($r < 0 ? -$r : $r), op => $op, %extra);
}

sub _err_text { my ($r) = @_; DaemonKit::FFI::dk_strerror($r) }

sub _fail_op {
    my ($op, $r, $what) = @_;
    _throw($op, $r, "$what: " . _err_text($r));
}

sub _usage {
    my ($message) = @_;
    DaemonKit::Error->throw(message => $message, errno => Errno::EINVAL(), op => 'usage');
}

sub _fd {
    my ($x, $what) = @_;
    _usage(($what // 'fd') . ': undefined') unless defined $x;
    if (ref $x || Scalar::Util::reftype(\$x) eq 'GLOB') {
        my $n = fileno($x);
        _usage(($what // 'fd') . ': not an open file handle') unless defined $n && $n >= 0;
        return $n;
    }
    _usage(($what // 'fd') . ": '$x' is not a file descriptor") unless $x =~ /^-?\d+\z/;
    return 0 + $x;
}

sub _ms {
    my ($secs, $what) = @_;
    return 0 unless defined $secs;
    _usage("$what: '$secs' is not a number of seconds") unless $secs =~ /^\d+(?:\.\d*)?\z|^\.\d+\z/;
    my $ms = int($secs * 1000 + 0.5);
    $ms = 1 if $ms == 0 && $secs > 0;
    $ms = 4294967295 if $ms > 4294967295;
    return $ms;
}

sub _check_opts {
    my ($func, $opts, @allowed) = @_;
    my %ok = map { $_ => 1 } @allowed;
    my @bad = grep { !$ok{$_} } sort keys %$opts;
    _usage("$func: unknown option" . (@bad > 1 ? 's' : '') . ' ' . join(', ', @bad)) if @bad;
}

sub _flush_std {
    for my $fh (\*STDOUT, \*STDERR) {
        $fh->flush if defined fileno($fh);
    }
    my $sel = select;
    if (ref $sel || ($sel ne 'main::STDOUT' && $sel ne 'main::STDERR')) {
        no strict 'refs';
        my $h = ref $sel ? $sel : \*{$sel};
        eval { $h->flush } if defined fileno($h);
    }
}

my (%SIGNUM, %SIGNAME);
{
    my @names = split ' ', $Config::Config{sig_name};
    my @nums  = split ' ', $Config::Config{sig_num};
    for my $i (0 .. $#names) {
        $SIGNUM{ $names[$i] } //= $nums[$i];
        $SIGNAME{ $nums[$i] } //= $names[$i];
    }
}

sub _resolve_self_argv {
    my $script = defined $0 ? $0 : '';
    my $abs = ($script ne '' && $script ne '-e' && $script ne '-' && -e $script)
        ? File::Spec->rel2abs($script) : $script;
    my @cmdline;
    if (open my $fh, '<', '/proc/self/cmdline') {
        local $/;
        my $raw = <$fh>;
        close $fh;
        @cmdline = split /\0/, $raw if defined $raw;
    }
    # /proc/self/cmdline keeps the interpreter's own switches (-Ilib, -w ...);
    # its argv[0] becomes the absolute interpreter and the script its absolute path.
    if (@cmdline > 1) {
        my @out = ($^X);
        my $seen_script = 0;
        for my $arg (@cmdline[1 .. $#cmdline]) {
            if (!$seen_script && $arg eq $script && $script ne '') {
                push @out, $abs;
                $seen_script = 1;
            } else {
                push @out, $arg;
            }
        }
        return @out if $seen_script;
    }
    return ($^X, ($abs ne '' && $abs ne '-e' ? ($abs) : ()), @ARGV);
}

# ---------------------------------------------------------------------------

=head1 FUNCTIONS

Nothing is exported by default; import what you use, or C<:functions>,
C<:constants>, C<:all>. (In a test script, C<fail> would clash with
L<Test::More>'s: import C<qw(:all !fail)> and call C<DaemonKit::fail>.)

=head2 version

    my $v = DaemonKit::version();     # (major << 16) | (minor << 8) | patch of the loaded library

=head2 version_string

    my $s = DaemonKit::version_string();   # "0.1.0"

=head2 strerror

    my $text = DaemonKit::strerror(-17);   # "File exists" (negative or positive errno)

=cut

sub version { DaemonKit::FFI::dk_version() }

sub version_string {
    my $v = version();
    return join '.', ($v >> 16) & 0xff, ($v >> 8) & 0xff, $v & 0xff;
}

sub strerror { DaemonKit::FFI::dk_strerror(0 + ($_[0] // 0)) }

=head2 daemonize

    my $role = daemonize(%options);

Turns the process into a daemon (daemon(7)): closes inherited fds above 2
except C<keep> and the library's own, resets signal dispositions, forks,
C<setsid>s, forks again, points stdio at F</dev/null> (stdout and stderr stay
on a log from L</log_open>), sets the umask and changes directory. Perl's
STDOUT and STDERR are flushed first.

The launching process never returns: it exits 0 when the daemon calls
L</ready>, prints the message and exits with the code given to L</fail>, or
explains how the daemon died. Returns C<DK_ROLE_DAEMON> in the daemon,
C<DK_ROLE_FOREGROUND> with C<< foreground => 1 >> or in an image started by
L</reexec>, C<DK_ROLE_UPGRADE> in a new generation started by L</upgrade> or
a supervisor's upgrade.

Options: C<keep> (array of fds or handles to keep open, e.g. listeners),
C<foreground>, C<keep_stdio>, C<no_close_fds>, C<no_chdir>,
C<no_signal_reset> (booleans), C<flags> (raw C<DK_DAEMON_*> bits, or'ed in),
C<chdir> (default F</>), C<umask> (default: unchanged; C<022> is a good
choice), C<timeout> (seconds the launcher waits for readiness; default: as
long as the daemon lives). Croaks C<daemonize: ...> (before the fork, in the
launcher; after it, in the daemon, which should then L</fail>).

=cut

sub daemonize {
    my (%o) = @_;
    _check_opts('daemonize', \%o, qw(keep foreground keep_stdio no_close_fds no_chdir no_signal_reset flags chdir umask timeout));
    my $flags = $o{flags} // 0;
    $flags |= DK_DAEMON_FOREGROUND      if $o{foreground};
    $flags |= DK_DAEMON_KEEP_STDIO      if $o{keep_stdio};
    $flags |= DK_DAEMON_NO_CLOSE_FDS    if $o{no_close_fds};
    $flags |= DK_DAEMON_NO_CHDIR        if $o{no_chdir};
    $flags |= DK_DAEMON_NO_SIGNAL_RESET if $o{no_signal_reset};
    my @keep = map { _fd($_, 'daemonize: keep') } @{ $o{keep} || [] };
    my ($kptr, $kn, $kbuf) = DaemonKit::FFI::int_array(@keep);
    my $umask = defined $o{umask} ? $o{umask} : -1;
    my $timeout = _ms($o{timeout}, 'daemonize: timeout');
    _flush_std();
    my $r = DaemonKit::FFI::dk_daemonize($flags, $kptr, $kn, $o{chdir}, $umask, $timeout);
    DaemonKit::FFI::sync_env(qw(DAEMONKIT_READY_FD DAEMONKIT_REEXEC));
    _fail_op('dk_daemonize', $r, 'daemonize') if $r < 0;
    return $r;
}

=head2 ready

    ready();

Reports that startup succeeded: the launcher of L</daemonize> exits 0, an old
master (upgrade) starts draining, a supervisor counts this worker as ready;
and (except in a worker) C<READY=1> goes to C<$NOTIFY_SOCKET> when set. Call
it once the server accepts connections and the PID file holds its pid.
Returns 1; croaks C<ready: notify ...> when the notification could not be
sent (the launcher was told anyway).

=cut

sub ready {
    _flush_std();
    my $r = DaemonKit::FFI::dk_ready();
    _fail_op('dk_ready', $r, 'ready: notify ' . ($ENV{NOTIFY_SOCKET} // 'NOTIFY_SOCKET')) if $r < 0;
    return 1;
}

=head2 fail

    fail($code, $message);
    exit $code;

Reports a startup failure: the launcher prints C<$message> on its stderr and
exits with C<$code> (1..255; anything else becomes 1). In the foreground and
in a worker the message goes to stderr. Exit afterwards. Accepts a
L<DaemonKit::Error> or any exception as the message (its text without the
location is used). Returns 1.

=cut

sub fail {
    my ($code, $message) = @_;
    $message = message_of($message) if defined $message;
    _flush_std();
    my $r = DaemonKit::FFI::dk_fail(0 + ($code // 1), $message);
    _fail_op('dk_fail', $r, 'fail') if $r < 0;
    return 1;
}

=head2 message_of

    my $text = DaemonKit::message_of($@);

The text of an exception without Perl's C< at FILE line N.> suffix: the
L<DaemonKit::Error/message>, or a die string trimmed. Handy for L</fail>.

=cut

sub message_of {
    my ($e) = @_;
    return '' unless defined $e;
    return $e->message if Scalar::Util::blessed($e) && $e->can('message');
    my $s = "$e";
    $s =~ s/ at \S+ line \d+\.?\n?\z//;
    $s =~ s/\s+\z//;
    return $s;
}
{ no warnings 'once'; *DaemonKit::Error::message_of = \&message_of; }

=head2 privileges_drop

    privileges_drop($user);            # the user's primary group
    privileges_drop($user, $group);

(C<dk_privileges_drop>; C<drop_privileges> is the same function under its older name.)

Drops root for good: resolves the user and group (names or numbers), sets
the user's supplementary groups, then C<setresgid> and C<setresuid>, and
verifies the result (including that C<setuid(0)> fails). Returns 1 (also
when already running as exactly that user without root, as after a
re-exec). Croaks C<unknown user 'www'>, C<unknown group 'www'>,
C<drop privileges to 'www': not running as root>, or for a failed
verification C<drop privileges to 'www': ids changed but did not verify;
exit now> (then exit at once).

=cut

sub privileges_drop {
    my ($user, $group) = @_;
    _usage('privileges_drop: no user given') unless defined $user && length $user;
    my $r = DaemonKit::FFI::dk_privileges_drop("$user", defined $group ? "$group" : undef, 0);
    if ($r >= 0) {
        # perl's require dies on an @INC directory it may not search (a 0700 checkout) instead
        # of trying the next one; keep only what the new user can still read. Modules already
        # loaded stay loaded.
        @INC = grep { ref($_) || (-d $_ && -r _ && -x _) } @INC;
        return 1;
    }
    _throw('dk_privileges_drop', $r, "unknown user '$user'")  if $r == DK_ERR_UNKNOWN_USER;
    _throw('dk_privileges_drop', $r, "unknown group '$group'") if $r == DK_ERR_UNKNOWN_GROUP && defined $group;
    _throw('dk_privileges_drop', $r, "drop privileges to '$user': the user's group does not exist") if $r == DK_ERR_UNKNOWN_GROUP;
    _throw('dk_privileges_drop', $r, "drop privileges to '$user': not running as root") if $r == DK_ERR_NOT_ROOT;
    _throw('dk_privileges_drop', $r, "drop privileges to '$user': ids changed but did not verify; exit now") if $r == DK_ERR_VERIFY;
    _fail_op('dk_privileges_drop', $r, "drop privileges to '$user'");
}

=pod

After a successful C<privileges_drop>, C<@INC> keeps only the directories the new user may search, so a
later C<require> does not die on a directory only root could read.

=head2 privileges_drop_caps

    privileges_drop_caps($user, $group, {
        keep => ['NET_BIND_SERVICE'],   # capability names, CAP_ optional, any case
        no_new_privs => 1,              # PR_SET_NO_NEW_PRIVS
        drop_bounding => 1,             # the others leave the bounding set too
    });

L</privileges_drop>, keeping the named capabilities across the switch (permitted,
effective, inheritable and ambient, so they survive C<exec>: a re-exec, an upgrade, a
worker that execs), then verified from C<capget> and F</proc/self/status> that the process
holds exactly them (C<dk_privileges_drop_caps>). Croaks C<unknown capability 'X'> for a
name C<cap_from_name> does not know, and C<drop privileges to 'www': cannot keep
SETUID, SETGID or SETPCAP (they undo the drop)> for those (C<-EINVAL>, nothing changed);
otherwise as L</privileges_drop>.

=cut

sub privileges_drop_caps {
    my ($user, $group, $opt) = @_;
    _usage('privileges_drop_caps: no user given') unless defined $user && length $user;
    $opt //= {};
    _usage('privileges_drop_caps: options must be a hash reference') unless ref $opt eq 'HASH';
    my $keep = 0;
    for my $name (@{ $opt->{keep} // [] }) {
        my $n = DaemonKit::FFI::dk_cap_from_name("$name");
        _throw('dk_cap_from_name', $n, "unknown capability '$name'") if $n < 0;
        $keep |= 1 << $n;
    }
    my $flags = ($opt->{no_new_privs} ? DK_PRIVILEGES_NO_NEW_PRIVS : 0)
              | ($opt->{drop_bounding} ? DK_PRIVILEGES_DROP_BOUNDING : 0);
    my $r = DaemonKit::FFI::dk_privileges_drop_caps("$user", defined $group ? "$group" : undef, $flags, $keep);
    if ($r >= 0) {
        @INC = grep { ref($_) || (-d $_ && -r _ && -x _) } @INC;
        return 1;
    }
    _throw('dk_privileges_drop_caps', $r, "drop privileges to '$user': cannot keep SETUID, SETGID or SETPCAP (they undo the drop), or a capability this kernel lacks")
        if $r == -Errno::EINVAL() && $keep;
    _throw('dk_privileges_drop_caps', $r, "unknown user '$user'")  if $r == DK_ERR_UNKNOWN_USER;
    _throw('dk_privileges_drop_caps', $r, "unknown group '$group'") if $r == DK_ERR_UNKNOWN_GROUP && defined $group;
    _throw('dk_privileges_drop_caps', $r, "drop privileges to '$user': not running as root") if $r == DK_ERR_NOT_ROOT;
    _throw('dk_privileges_drop_caps', $r, "drop privileges to '$user': ids changed but did not verify; exit now") if $r == DK_ERR_VERIFY;
    _fail_op('dk_privileges_drop_caps', $r, "drop privileges to '$user'");
}

=head2 cap_from_name

    my $n = cap_from_name('NET_BIND_SERVICE');   # 10

The number of a capability (C<dk_cap_from_name>: the C<CAP_> prefix optional, any case);
croaks C<unknown capability 'X'>.

=cut

sub cap_from_name {
    my ($name) = @_;
    _usage('cap_from_name: no name given') unless defined $name;
    my $n = DaemonKit::FFI::dk_cap_from_name("$name");
    _throw('dk_cap_from_name', $n, "unknown capability '$name'") if $n < 0;
    return $n;
}

=head2 drop_privileges

    drop_privileges($user, $group);

The older name of L</privileges_drop>: the same function.

=cut

sub drop_privileges { goto &privileges_drop }

=pod

=head2 user_lookup

    my ($uid, $gid) = user_lookup('nobody');     # name or number

Croaks C<unknown user 'X'>.

=head2 group_lookup

    my $gid = group_lookup('nogroup');            # name or number

Croaks C<unknown group 'X'>.

=cut

sub user_lookup {
    my ($user) = @_;
    _usage('user_lookup: no user given') unless defined $user;
    my ($uid, $gid) = (0, 0);
    my $r = DaemonKit::FFI::dk_user_lookup("$user", \$uid, \$gid);
    _throw('dk_user_lookup', $r, "unknown user '$user'") if $r == DK_ERR_UNKNOWN_USER;
    _fail_op('dk_user_lookup', $r, "user '$user'") if $r < 0;
    return wantarray ? ($uid, $gid) : $uid;
}

sub group_lookup {
    my ($group) = @_;
    _usage('group_lookup: no group given') unless defined $group;
    my $gid = 0;
    my $r = DaemonKit::FFI::dk_group_lookup("$group", \$gid);
    _throw('dk_group_lookup', $r, "unknown group '$group'") if $r == DK_ERR_UNKNOWN_GROUP;
    _fail_op('dk_group_lookup', $r, "group '$group'") if $r < 0;
    return $gid;
}

=head2 rlimit_get

    my ($soft, $hard) = rlimit_get('NOFILE');     # or DK_RLIMIT_NOFILE, 'RLIMIT_NOFILE'

Unlimited is C<DK_RLIM_INFINITY>. In scalar context returns the soft limit.
Resources by name: C<NOFILE>, C<CORE>, C<NPROC>, C<AS> (or any
C<RLIMIT_*> number).

=head2 rlimit_set

    rlimit_set('CORE', 0, 0);
    rlimit_set('NOFILE', 4096);        # hard limit unchanged

Croaks C<rlimit NOFILE: ...> (C<EPERM> raising the hard limit without root,
C<EINVAL> soft above hard).

=head2 rlimit_nofile

    my $got = rlimit_nofile(65536);    # soft NOFILE, capped at the hard limit

Returns the limit obtained.

=head2 rlimit_disable_core

    rlimit_disable_core();             # RLIMIT_CORE soft and hard 0

=cut

my %RLIMIT = (CORE => DK_RLIMIT_CORE, NPROC => DK_RLIMIT_NPROC, NOFILE => DK_RLIMIT_NOFILE, AS => DK_RLIMIT_AS);
my %RLIMIT_NAME = reverse %RLIMIT;

sub _rlimit {
    my ($res) = @_;
    _usage('rlimit: no resource given') unless defined $res;
    return 0 + $res if $res =~ /^\d+\z/;
    (my $n = uc $res) =~ s/^RLIMIT_//;
    return $RLIMIT{$n} if exists $RLIMIT{$n};
    my $v = eval { no strict 'refs'; &{"POSIX::RLIMIT_$n"}() };
    return $v if defined $v;
    _usage("rlimit: unknown resource '$res'");
}

sub _rlimit_label { my $n = shift; exists $RLIMIT_NAME{$n} ? $RLIMIT_NAME{$n} : "resource $n" }

sub rlimit_get {
    my ($res) = @_;
    my $n = _rlimit($res);
    my ($soft, $hard) = (0, 0);
    my $r = DaemonKit::FFI::dk_rlimit_get($n, \$soft, \$hard);
    _fail_op('dk_rlimit_get', $r, 'rlimit ' . _rlimit_label($n)) if $r < 0;
    return wantarray ? ($soft, $hard) : $soft;
}

sub rlimit_set {
    my ($res, $soft, $hard) = @_;
    my $n = _rlimit($res);
    _usage('rlimit_set: no soft limit given') unless defined $soft;
    $hard = (rlimit_get($n))[1] unless defined $hard;
    my $r = DaemonKit::FFI::dk_rlimit_set($n, $soft, $hard);
    _fail_op('dk_rlimit_set', $r, 'rlimit ' . _rlimit_label($n) . " $soft/$hard") if $r < 0;
    return 1;
}

sub rlimit_nofile {
    my ($wanted) = @_;
    _usage('rlimit_nofile: no limit given') unless defined $wanted && $wanted =~ /^\d+\z/;
    my $got = 0;
    my $r = DaemonKit::FFI::dk_rlimit_nofile($wanted, \$got);
    _fail_op('dk_rlimit_nofile', $r, "rlimit NOFILE $wanted") if $r < 0;
    return $got;
}

sub rlimit_disable_core {
    my $r = DaemonKit::FFI::dk_rlimit_disable_core();
    _fail_op('dk_rlimit_disable_core', $r, 'rlimit CORE 0') if $r < 0;
    return 1;
}

=head2 fd_set_cloexec

    fd_set_cloexec($fd_or_handle);        # set close-on-exec
    fd_set_cloexec($fd_or_handle, 0);     # clear it (pass the fd on to an exec)

Croaks C<fd N: Bad file descriptor>.

=head2 fd_close_from

    fd_close_from(3, $listen_fd, $other);   # close every fd >= 3 except those (and the library's own)

=cut

sub fd_set_cloexec {
    my ($fd, $on) = @_;
    my $n = _fd($fd, 'fd_set_cloexec');
    my $r = DaemonKit::FFI::dk_fd_set_cloexec($n, (defined $on && !$on) ? 0 : 1);
    _fail_op('dk_fd_set_cloexec', $r, "fd $n") if $r < 0;
    return 1;
}

sub fd_close_from {
    my ($first, @keep) = @_;
    _usage('fd_close_from: no first fd given') unless defined $first;
    my @k = map { _fd($_, 'fd_close_from: keep') } @keep;
    my ($ptr, $n, $buf) = DaemonKit::FFI::int_array(@k);
    my $r = DaemonKit::FFI::dk_fd_close_from(0 + $first, $ptr, $n);
    _fail_op('dk_fd_close_from', $r, "close fds from $first") if $r < 0;
    return 1;
}

=head2 log_open

    log_open('/var/log/app.log');                       # stdout and stderr, appended
    log_open('/var/log/app.log', which => 'stderr');    # 'stdout', 'stderr' or 'both'

Opens the file append-only (created 0640) and moves stdout and/or stderr onto
it; Perl's STDOUT and STDERR are flushed first and keep working (same fds).
The path is remembered for L</log_reopen>. Croaks C<log file PATH: ...>.

=head2 log_reopen

    log_reopen();        # on SIGUSR1, after logrotate renamed the file

Croaks C<log reopen: no log file was opened> or C<log file reopen: ...>
(the old file then stays in place).

=cut

sub log_open {
    my ($path, %o) = @_;
    _check_opts('log_open', \%o, qw(which));
    _usage('log_open: no path given') unless defined $path && length $path;
    my $which = $o{which} // 'both';
    my $bits = $which eq 'both' ? 0 : $which eq 'stdout' ? DK_LOG_STDOUT : $which eq 'stderr' ? DK_LOG_STDERR
        : $which =~ /^\d+\z/ ? $which : _usage("log_open: which must be 'stdout', 'stderr' or 'both'");
    _flush_std();
    my $r = DaemonKit::FFI::dk_log_open($path, $bits);
    _fail_op('dk_log_open', $r, "log file $path") if $r < 0;
    return 1;
}

sub log_reopen {
    _flush_std();
    my $r = DaemonKit::FFI::dk_log_reopen();
    _throw('dk_log_reopen', $r, 'log reopen: no log file was opened (log_open)') if $r == -Errno::EBADF();
    _fail_op('dk_log_reopen', $r, 'log file reopen') if $r < 0;
    return 1;
}

=head2 signal_number

    my $n = signal_number('TERM');    # 15; also 'SIGTERM' or 15

Croaks C<unknown signal 'X'>.

=head2 signal_name

    my $name = signal_name(15);       # 'TERM'

=cut

sub signal_number {
    my ($s) = @_;
    _usage('signal: undefined') unless defined $s;
    return 0 + $s if $s =~ /^\d+\z/;
    (my $n = uc $s) =~ s/^SIG//;
    return $SIGNUM{$n} if exists $SIGNUM{$n};
    _usage("unknown signal '$s'");
}

sub signal_name {
    my ($n) = @_;
    return undef unless defined $n;
    return $SIGNAME{$n} // "SIG$n";
}

=head2 signal_open

    my $fd = signal_open(qw(TERM INT HUP USR1));

    my $fd = signal_open({ restart => 0 }, qw(ALRM));    # without SA_RESTART

Registers the signals with the library's self-pipe and returns its read fd
(non-blocking, close-on-exec) to watch for readability in any event loop;
then call L</signal_next> until it returns 0. Calling it again adds signals
and returns the same fd. Do not also handle these signals through C<%SIG>
(or IO::Async's C<watch_signal>): one owner per signal. Croaks
C<signal_open(TERM, KILL): Invalid argument> (uncatchable or unknown; also
the synchronous faults SEGV, BUS, FPE, ILL, TRAP and SYS, which cannot go
through a pipe). The handlers are installed with C<SA_RESTART>; with a
leading C<< { restart => 0 } >> they are installed without it, so a blocking
system call the signal interrupts fails with C<EINTR> (C<dk_signal_open_flags>
with C<DK_SIGNAL_NO_RESTART>).

=head2 signal_next

    while (my $sig = signal_next()) { ... }     # numbers; signal_name($sig) for 'TERM'

The next pending signal, lowest first, each once; 0 when none. Never blocks.

=head2 signal_wait

    my $sig = signal_wait(2.5);     # seconds; undef or negative: forever. 0 on timeout

Croaks C<signal_wait: no signal is registered> before L</signal_open>.

=head2 signal_close

    signal_close();   # restore the previous dispositions, close the pipe

=head2 signal_reset_child

    signal_reset_child();   # in a freshly forked child: all dispositions default, mask empty, pipe closed

=head2 signal_ignore_sigpipe

    signal_ignore_sigpipe();   # EPIPE instead of death when writing to a closed socket

=cut

sub signal_open {
    my (@sigs) = @_;
    my %o = ref $sigs[0] eq 'HASH' ? %{ shift @sigs } : ();
    _check_opts('signal_open', \%o, qw(restart));
    my $flags = (exists $o{restart} && !$o{restart}) ? DK_SIGNAL_NO_RESTART : 0;
    my @n = map { signal_number($_) } @sigs;
    my ($ptr, $cnt, $buf) = DaemonKit::FFI::int_array(@n);
    my $r = DaemonKit::FFI::dk_signal_open_flags($ptr, $cnt, $flags);
    _fail_op('dk_signal_open', $r, 'signal_open(' . join(', ', map { signal_name($_) } @n) . ')') if $r < 0;
    return $r;
}

sub signal_next {
    my $r = DaemonKit::FFI::dk_signal_next();
    _fail_op('dk_signal_next', $r, 'signal_next') if $r < 0;
    return $r;
}

sub signal_wait {
    my ($secs) = @_;
    my $ms = (!defined $secs || $secs < 0) ? -1 : _ms($secs, 'signal_wait');
    $ms = 2147483647 if $ms > 2147483647;
    my $r = DaemonKit::FFI::dk_signal_wait($ms);
    _throw('dk_signal_wait', $r, 'signal_wait: no signal is registered (signal_open)') if $r == -Errno::EBADF();
    _fail_op('dk_signal_wait', $r, 'signal_wait') if $r < 0;
    return $r;
}

sub signal_close {
    my $r = DaemonKit::FFI::dk_signal_close();
    _fail_op('dk_signal_close', $r, 'signal_close') if $r < 0;
    return 1;
}

sub signal_reset_child {
    my $r = DaemonKit::FFI::dk_signal_reset_child();
    _fail_op('dk_signal_reset_child', $r, 'signal_reset_child') if $r < 0;
    return 1;
}

sub signal_ignore_sigpipe {
    my $r = DaemonKit::FFI::dk_signal_ignore_sigpipe();
    _fail_op('dk_signal_ignore_sigpipe', $r, 'ignore SIGPIPE') if $r < 0;
    return 1;
}

=head2 listen_tcp

    my $fd = listen_tcp('127.0.0.1:8080');
    my $fd = listen_tcp('[::1]:0', backlog => 128, reuseport => 1, inherit => 1);

Binds and listens (C<SO_REUSEADDR> always); C<HOST:PORT> with a numeric host,
C<*:80> or C<:80> for any IPv4 address, port 0 for a free port (read it with
L</socket_port>). Returns the fd (close-on-exec unless C<inherit>). Croaks
C<127.0.0.1:8080: Address already in use>.

=head2 listen_unix

    my $fd = listen_unix('/run/app.sock', mode => 0660, backlog => 128, inherit => 0);
    my $fd = listen_unix('@abstract-name');

A socket file left by a dead server is replaced; one still in use croaks
C</run/app.sock: Address already in use>.

=cut

sub listen_tcp {
    my ($addr, %o) = @_;
    _check_opts('listen_tcp', \%o, qw(backlog reuseport inherit));
    _usage('listen_tcp: no address given') unless defined $addr;
    my $flags = ($o{reuseport} ? DK_LISTEN_REUSEPORT : 0) | ($o{inherit} ? DK_LISTEN_INHERIT : 0);
    my $r = DaemonKit::FFI::dk_listen_tcp("$addr", $o{backlog} // 0, $flags);
    _throw('dk_listen_tcp', $r, "$addr: invalid address (want HOST:PORT with a numeric host)")
        if $r == -Errno::EINVAL();
    _fail_op('dk_listen_tcp', $r, $addr) if $r < 0;
    return $r;
}

sub listen_unix {
    my ($path, %o) = @_;
    _check_opts('listen_unix', \%o, qw(mode backlog inherit));
    _usage('listen_unix: no path given') unless defined $path;
    my $flags = $o{inherit} ? DK_LISTEN_INHERIT : 0;
    my $r = DaemonKit::FFI::dk_listen_unix("$path", $o{mode} // 0, $o{backlog} // 0, $flags);
    _fail_op('dk_listen_unix', $r, $path) if $r < 0;
    return $r;
}

=head2 socket_port

    my $port = socket_port($fd_or_handle);

The local TCP port. Croaks C<fd N: ...> (not a TCP socket, bad fd).

=head2 socket_name

    my $name = socket_name($fd_or_handle);    # "127.0.0.1:8080", "[::1]:80" or the Unix path

=cut

sub socket_port {
    my ($fd) = @_;
    my $n = _fd($fd, 'socket_port');
    my $r = DaemonKit::FFI::dk_socket_port($n);
    _fail_op('dk_socket_port', $r, "fd $n") if $r < 0;
    return $r;
}

sub socket_name {
    my ($fd) = @_;
    my $n = _fd($fd, 'socket_name');
    my $size = 128;
    while (1) {
        my ($ptr, $len, $buf) = DaemonKit::FFI::out_buffer($size);
        my $r = DaemonKit::FFI::dk_socket_name($n, $ptr, $len);
        if ($r == -Errno::ERANGE() && $size < 65536) { $size *= 4; next }
        _fail_op('dk_socket_name', $r, "fd $n") if $r < 0;
        return substr($$buf, 0, $r);
    }
}

=head2 listen_fds

    my @fds = listen_fds();                         # fds 3.. passed by systemd or a re-exec
    my @fds = listen_fds(unset => 1, names => \my @names);

The listening fds passed with C<LISTEN_FDS>/C<LISTEN_PID> (socket
activation, or this program re-executed or upgraded), made close-on-exec;
empty when none. C<names> receives C<LISTEN_FDNAMES>; C<unset> removes the
variables. In scalar context returns the count. Croaks C<LISTEN_FDS: ...>.

=cut

sub listen_fds {
    my (%o) = @_;
    _check_opts('listen_fds', \%o, qw(unset names));
    my $flags = $o{unset} ? DK_LISTEN_FDS_UNSET : 0;
    my ($r, $buf);
    my $size = 4096;
    while (1) {
        my ($ptr, $len);
        ($ptr, $len, $buf) = DaemonKit::FFI::out_buffer($size);
        $r = DaemonKit::FFI::dk_listen_fds($flags, $ptr, $len);
        if ($r == -Errno::ENAMETOOLONG() && $size < 1 << 20) { $size *= 8; next }
        last;
    }
    DaemonKit::FFI::sync_env(qw(LISTEN_PID LISTEN_FDS LISTEN_FDNAMES)) if $flags;
    _fail_op('dk_listen_fds', $r, 'LISTEN_FDS') if $r < 0;
    if (ref $o{names} eq 'ARRAY') {
        (my $names = $$buf) =~ s/\0.*//s;
        @{ $o{names} } = length $names ? split(/:/, $names, -1) : ();
    }
    my @fds = $r > 0 ? (DK_LISTEN_FDS_START .. DK_LISTEN_FDS_START + $r - 1) : ();
    return wantarray ? @fds : scalar @fds;
}

=head2 notify

    my $sent = notify("STATUS=serving\nWATCHDOG=1");

Sends one datagram to C<$NOTIFY_SOCKET> (a path or C<@abstract>). Returns 1
when sent, 0 when C<NOTIFY_SOCKET> is unset. Croaks
C<notify NOTIFY_SOCKET=/run/x: Connection refused>.

=head2 notify_reloading

    notify_reloading();    # RELOADING=1 + MONOTONIC_USEC (Type=notify-reload); send READY=1 after

=head2 notify_stopping

    notify_stopping();     # STOPPING=1

=head2 notify_fd

    notify_fd(3);          # s6: ready() also writes "\n" to fd 3 and closes it

s6's readiness protocol (the service directory's C<notification-fd>):
L</ready> also writes a newline to that fd and closes it. The fd becomes
close-on-exec and the library's own (L</daemonize> keeps it; workers do not
get it; the supervisor's master writes it once every worker is ready). Croaks
C<notify_fd 3: Bad file descriptor> for a closed fd.

=head2 watchdog_usec

    my $usec = watchdog_usec();   # the systemd watchdog interval for us, or 0 when not enabled

=cut

sub _notify_ret {
    my ($op, $r) = @_;
    _fail_op($op, $r, 'notify NOTIFY_SOCKET=' . ($ENV{NOTIFY_SOCKET} // '')) if $r < 0;
    return $r;
}

sub notify {
    my ($state) = @_;
    _usage('notify: no state given') unless defined $state;
    return _notify_ret('dk_notify', DaemonKit::FFI::dk_notify("$state"));
}

sub notify_reloading { _notify_ret('dk_notify_reloading', DaemonKit::FFI::dk_notify_reloading()) }

sub notify_fd {
    my ($fd) = @_;
    $fd = fileno($fd) if ref $fd;
    _usage('notify_fd: no fd given') unless defined $fd && $fd =~ /^\d+\z/;
    my $r = DaemonKit::FFI::dk_notify_fd($fd);
    _fail_op('dk_notify_fd', $r, "notify_fd $fd") if $r < 0;
    return 1;
}
sub notify_stopping  { _notify_ret('dk_notify_stopping', DaemonKit::FFI::dk_notify_stopping()) }

sub watchdog_usec {
    my $usec = 0;
    my $r = DaemonKit::FFI::dk_watchdog_usec(\$usec);
    _fail_op('dk_watchdog_usec', $r, 'watchdog') if $r < 0;
    return $r ? $usec : 0;
}

=head2 fd_send

    my $bytes = fd_send($unix_socket, $data, @fds_or_handles);

Sends C<$data> (at least one byte) with the fds over a connected Unix socket
(C<SCM_RIGHTS>). Croaks C<fd_send on fd N: ...>.

=head2 fd_recv

    my ($data, @fds) = fd_recv($unix_socket, max => 4096, max_fds => 16);

Receives one message and the fds that came with it (close-on-exec). C<$data>
is C<''> when the peer closed. Croaks C<fd_recv on fd N: ...> (C<EMSGSIZE>:
truncated, the fds that did arrive were closed; C<EAGAIN> on a non-blocking
socket with nothing to read).

=cut

sub fd_send {
    my ($sock, $data, @fds) = @_;
    my $s = _fd($sock, 'fd_send');
    _usage('fd_send: no data (at least one byte is needed)') unless defined $data && length $data;
    my @n = map { _fd($_, 'fd_send: fd') } @fds;
    my $bytes = "$data";
    utf8::downgrade($bytes, 1) or _usage('fd_send: data has wide characters (encode it first)');
    my ($dptr, $dlen) = FFI::Platypus::Buffer::scalar_to_buffer($bytes);
    my ($fptr, $fcnt, $fbuf) = DaemonKit::FFI::int_array(@n);
    my $r = DaemonKit::FFI::dk_fd_send($s, $dptr, $dlen, $fptr, $fcnt);
    _fail_op('dk_fd_send', $r, "fd_send on fd $s") if $r < 0;
    return $r;
}

sub fd_recv {
    my ($sock, %o) = @_;
    _check_opts('fd_recv', \%o, qw(max max_fds));
    my $s = _fd($sock, 'fd_recv');
    my $max = $o{max} // 4096;
    my $max_fds = $o{max_fds} // 16;
    my ($dptr, $dlen, $dbuf) = DaemonKit::FFI::out_buffer($max);
    my ($fptr, $flen, $fbuf) = DaemonKit::FFI::out_buffer(($max_fds || 1) * length(pack 'i!', 0));
    my $nfds = $max_fds;
    my $r = DaemonKit::FFI::dk_fd_recv($s, $dptr, $dlen, $max_fds ? $fptr : undef, \$nfds);
    _fail_op('dk_fd_recv', $r, "fd_recv on fd $s") if $r < 0;
    my @fds = $nfds ? unpack("i!$nfds", $$fbuf) : ();
    return (substr($$dbuf, 0, $r), @fds);
}

=head2 self_argv

    my @argv = self_argv();   # ($^X, '/abs/path/app.pl', original @ARGV)

What a re-exec or an upgrade should run: the interpreter, the absolute
script path and the original arguments (with the interpreter's own switches
such as C<-Ilib>), resolved when DaemonKit was loaded, before Getopt or a
C<chdir>.

=cut

sub self_argv { @SELF_ARGV }

sub _exec_args {
    my ($func, %o) = @_;
    my @argv = $o{argv} ? @{ $o{argv} } : self_argv();
    _usage("$func: empty argv") unless @argv;
    my @fds = map { _fd($_, "$func: fds") } @{ $o{fds} || [] };
    my $pf = $o{pidfile};
    my $pfh;
    if (defined $pf) {
        _usage("$func: pidfile is not a DaemonKit::PidFile") unless Scalar::Util::blessed($pf) && $pf->isa('DaemonKit::PidFile');
        $pfh = $pf->_handle;
    }
    my $names = $o{names};
    $names = join(':', @$names) if ref $names eq 'ARRAY';
    return (\@argv, \@fds, $names, $pfh);
}

=head2 reexec

    reexec(fds => [$listen_fd], pidfile => $pf);              # argv defaults to self_argv()
    reexec(argv => [$^X, $script, @args], fds => [...], names => 'http', pidfile => $pf);

Replaces the program with a fresh image of C<argv> (same pid), passing the
listening fds as fds 3.. with C<LISTEN_FDS>/C<LISTEN_PID> (and
C<LISTEN_FDNAMES> = C<names>, a string or an array), and the locked PID file
for L<DaemonKit::PidFile/open> to adopt; the new image's L</daemonize> does
not fork. Perl's STDOUT and STDERR are flushed first. Returns only on
failure, croaking C<re-exec /usr/bin/perl: ...> with every fd as it was.

=cut

sub reexec {
    my (%o) = @_;
    _check_opts('reexec', \%o, qw(argv fds names pidfile));
    my ($argv, $fds, $names, $pfh) = _exec_args('reexec', %o);
    my $cargv = DaemonKit::FFI::c_string_array(@$argv);
    my ($fptr, $fcnt, $fbuf) = DaemonKit::FFI::int_array(@$fds);
    _flush_std();
    my $r = DaemonKit::FFI::dk_reexec($cargv->ptr, $fptr, $fcnt, $names, $pfh);
    _fail_op('dk_reexec', $r, "re-exec $argv->[0]");
}

=head2 upgrade

    my $new_pid = upgrade(fds => [$listen_fd], pidfile => $pf, timeout => 30);

Zero-downtime upgrade of a single process: starts C<argv> (default
L</self_argv>) as a new generation with the listeners and the locked PID
file and waits up to C<timeout> seconds (0 or undef: forever) for its
L</ready>. Returns its pid: stop accepting, finish in-flight requests, then
C<< $pf->close >> (not remove: the file holds the new pid) and exit 0. On
failure the new generation was killed and the PID file holds our pid again;
croaks C<upgrade failed: MESSAGE> with the new generation's own L</fail>
message when it sent one, else the errno's text (C<ECANCELED>, C<ETIMEDOUT>).

=cut

sub upgrade {
    my (%o) = @_;
    _check_opts('upgrade', \%o, qw(argv fds names pidfile timeout));
    my ($argv, $fds, $names, $pfh) = _exec_args('upgrade', %o);
    my $cargv = DaemonKit::FFI::c_string_array(@$argv);
    my ($fptr, $fcnt, $fbuf) = DaemonKit::FFI::int_array(@$fds);
    my ($mptr, $mlen, $mbuf) = DaemonKit::FFI::out_buffer(1100);
    my $timeout = _ms($o{timeout}, 'upgrade: timeout');
    _flush_std();
    my $r = DaemonKit::FFI::dk_upgrade($cargv->ptr, $fptr, $fcnt, $names, $pfh, $timeout, $mptr, $mlen);
    if ($r < 0) {
        (my $msg = $$mbuf) =~ s/\0.*//s;
        my $why = length $msg ? $msg
            : $r == -Errno::ETIMEDOUT() ? 'the new generation was not ready in time'
            : $r == -Errno::ECANCELED() ? 'the new generation exited before it was ready'
            : "$argv->[0]: " . _err_text($r);
        _throw('dk_upgrade', $r, "upgrade failed: $why", child_message => $msg);
    }
    return $r;
}

=head1 CONSTANTS

The C<#define>s of F<include/daemonkit.h>, same names and values (a test
compares them); import them with C<:constants>.

=over 4

=item DK_VERSION

The header version this binding was written against, C<(major << 16) | (minor << 8) | patch>.

=item DK_VERSION_MAJOR

Its major version.

=item DK_PIDFILE_RUNNING

C<dk_pidfile_check>: a live process holds the lock (L<DaemonKit::PidFile/check> says C<running>).

=item DK_PIDFILE_STALE

C<dk_pidfile_check>: the file exists, its lock is free (C<stale>).

=item DK_PIDFILE_FOREIGN

C<dk_pidfile_check>: the file is locked, but not by the process whose pid it
holds (C<foreign>): somebody else took a stale file's lock. That pid is never
signalled.

=item DK_ERR_PIDFILE_FOREIGN

C<dk_pidfile_open>/C<dk_pidfile_kill>: the same situation (C<-EBUSY>).

=item DK_ERR_UNKNOWN_USER

L</privileges_drop>: no such user (C<-ESRCH>).

=item DK_ERR_UNKNOWN_GROUP

L</privileges_drop>: no such group (C<-ENOENT>).

=item DK_ERR_NOT_ROOT

L</privileges_drop>: not running as root (C<-EPERM>).

=item DK_ERR_VERIFY

L</privileges_drop>: ids changed but did not verify; exit at once (C<-ENOTRECOVERABLE>).

=item DK_PRIVILEGES_NO_NEW_PRIVS

L</privileges_drop_caps>: C<PR_SET_NO_NEW_PRIVS> after the drop.

=item DK_PRIVILEGES_DROP_BOUNDING

L</privileges_drop_caps>: every capability not kept leaves the bounding set too.

=item DK_RLIM_INFINITY

An unlimited resource limit.

=item DK_RLIMIT_CORE

C<RLIMIT_CORE>.

=item DK_RLIMIT_NPROC

C<RLIMIT_NPROC>.

=item DK_RLIMIT_NOFILE

C<RLIMIT_NOFILE>.

=item DK_RLIMIT_AS

C<RLIMIT_AS>.

=item DK_LOG_STDOUT

L</log_open>: replace stdout.

=item DK_LOG_STDERR

L</log_open>: replace stderr.

=item DK_SIGNAL_NO_RESTART

C<dk_signal_open_flags>: install the handlers without C<SA_RESTART> (L</signal_open> with C<< { restart => 0 } >>).

=item DK_LISTEN_REUSEPORT

L</listen_tcp>: also set C<SO_REUSEPORT> (C<< reuseport => 1 >>).

=item DK_LISTEN_INHERIT

L</listen_tcp>/L</listen_unix>: not close-on-exec (C<< inherit => 1 >>).

=item DK_LISTEN_FDS_UNSET

L</listen_fds>: unset the variables (C<< unset => 1 >>).

=item DK_LISTEN_FDS_START

The first passed fd, 3.

=item DK_DAEMON_FOREGROUND

L</daemonize>: no fork (C<< foreground => 1 >>).

=item DK_DAEMON_KEEP_STDIO

L</daemonize>: keep stdio (C<< keep_stdio => 1 >>).

=item DK_DAEMON_NO_CLOSE_FDS

L</daemonize>: keep inherited fds (C<< no_close_fds => 1 >>).

=item DK_DAEMON_NO_CHDIR

L</daemonize>: no chdir (C<< no_chdir => 1 >>).

=item DK_DAEMON_NO_SIGNAL_RESET

L</daemonize>: keep signal dispositions (C<< no_signal_reset => 1 >>).

=item DK_ROLE_DAEMON

L</daemonize> returned in a forked daemon.

=item DK_ROLE_FOREGROUND

L</daemonize> returned in the foreground or in a re-executed image.

=item DK_ROLE_UPGRADE

L</daemonize> returned in a new generation started by an upgrade.

=item DK_EVENT_SPAWNED

Supervisor event: a worker started (value: its index).

=item DK_EVENT_EXITED

A worker exited (value: its wait status).

=item DK_EVENT_RESPAWN_DELAYED

Crash-loop throttle (value: delay in ms).

=item DK_EVENT_WORKER_READY

A worker is ready (value: index, -1 when assumed after the ready timeout).

=item DK_EVENT_READY

Every initial worker is ready; the master called ready (value: N).

=item DK_EVENT_RELOADING

HUP: rolling restart began (value: generation).

=item DK_EVENT_RELOADED

Rolling restart finished (value: generation).

=item DK_EVENT_STOPPING

Graceful stop began (value: timeout in ms).

=item DK_EVENT_KILLED

A worker was killed after the graceful timeout.

=item DK_EVENT_UPGRADE_STARTED

USR2: a new generation was started (pid).

=item DK_EVENT_UPGRADE_READY

The new generation is ready; this one drains.

=item DK_EVENT_UPGRADE_FAILED

Upgrade rolled back (value: 1 failed, 2 exited, 3 timeout, 4 not configured, or -errno).

=item DK_EVENT_LOG_REOPENED

USR1: log reopened and forwarded (value: 0 or -errno).

=item DK_EVENT_WORKERS_CHANGED

TTIN/TTOU (value: the new worker count).

=item DK_EVENT_WORKER_FAILED

A worker reported a startup failure (value: its code).

=item DK_EVENT_RELOAD_FAILED

A rolling restart was abandoned: a new worker exited before it was ready (pid; value: its wait status); the old workers keep serving.

=item DK_EVENT_GAVE_UP

The restart policy gave up (L<DaemonKit::Supervisor/set_restart>): pid of the last crashed worker, value the crash count.

=item DK_SUPERVISOR_GAVE_UP

L<DaemonKit::Supervisor/run>: the restart policy gave up; every worker was stopped. Exit with a distinct code.

=item DK_SUPERVISOR_REAP_ALL

L<DaemonKit::Supervisor/set_flags>: reap every orphan (PID 1 or a child subreaper).

=item DK_SUPERVISOR_ONCE

L<DaemonKit::Supervisor/set_flags>: one worker run once, its signals forwarded, its status in L<DaemonKit::Supervisor/exit_status>.

=item DK_SUPERVISOR_SIGNAL_GROUP

L<DaemonKit::Supervisor/set_flags>: signals go to each worker's whole process group.

=item DK_SUPERVISOR_STOPPED

L<DaemonKit::Supervisor/run>: graceful stop finished, PID file unlinked.

=item DK_SUPERVISOR_UPGRADED

L<DaemonKit::Supervisor/run>: a new generation took over.

=item DK_SUPERVISOR_MAX_WORKERS

Most workers one supervisor runs (256).

=back

=head1 SEE ALSO

L<DaemonKit::PidFile>, L<DaemonKit::Supervisor>, L<DaemonKit::IOAsync>,
L<DaemonKit::Error>, L<DaemonKit::FFI>; F<include/daemonkit.h> for the C
semantics behind every call.

=cut

require DaemonKit::PidFile;
require DaemonKit::Supervisor;

1;
