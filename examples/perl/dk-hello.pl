#!/usr/bin/perl
# dk-hello.pl - the Perl example server of daemonkit: a small IO::Async
# HTTP/1.1 server whose process plumbing (listeners, PID file, daemonize,
# log, limits, privileges, signals, prefork workers, re-exec, upgrade) is
# libdaemonkit, through the DaemonKit Perl binding.
#
#   perl examples/perl/dk-hello.pl [--listen HOST:PORT] [-D|--daemonize] [--pid FILE]
#        [--user USER] [--group GROUP] [-w|--workers N] [--max-requests N]
#        [--log FILE] [--nofile N] [--graceful-timeout SECONDS] [--foreground-notify]
#        [--notify-fd N]
#
# --notify-fd N is s6's readiness protocol (the service directory's
# notification-fd names N): stay in the foreground and give fd N to
# DaemonKit::notify_fd, so that ready() writes "\n" to it and closes it once
# we serve (with -w N the master does, once every worker is ready). A re-exec
# or a new generation runs without the option (see @REARGV).
#
# It follows examples/README.md step by step; the numbered comments below
# are the recipe's steps.

use strict;
use warnings;

use FindBin ();
use lib "$FindBin::RealBin/../../bindings/perl/lib";

use Cwd ();
use Errno ();
use File::Spec ();
use Getopt::Long ();
use POSIX ();

use DaemonKit ();    # resolves our argv for re-exec/upgrade now, before Getopt and chdir

BEGIN {
    # The library: $DAEMONKIT_LIB, else the one built in this tree, else the system's.
    my $built = "$FindBin::RealBin/../../target/lib/libdaemonkit.so";
    DaemonKit::FFI::load($ENV{DAEMONKIT_LIB} // (-e $built ? Cwd::abs_path($built) : undef));
}

use DaemonKit qw(:functions :constants);
use DaemonKit::PidFile;
use DaemonKit::Supervisor;
use DaemonKit::IOAsync;
use HTTP::Parser::XS qw(parse_http_request);
use IO::Async::Stream;

our $LANG = 'perl';

# ---------------------------------------------------------------------------
# The HTTP side: accept on the listener, parse with HTTP::Parser::XS, answer
# and close; a timer (not a sleep) for /slow; drain() for graceful stops.

package DkHello::Server;

use strict;
use warnings;
use Errno ();
use HTTP::Parser::XS qw(parse_http_request);
use IO::Async::Stream;

our %REASON = (200 => 'OK', 400 => 'Bad Request', 404 => 'Not Found', 408 => 'Request Timeout',
              431 => 'Request Header Fields Too Large');

sub new {
    my ($class, %a) = @_;
    my $self = bless {
        loop => $a{loop}, fd => $a{fd}, graceful => $a{graceful},
        max_requests => $a{max_requests}, on_max => $a{on_max},
        accepted => 0, conns => {}, next_id => 0, accepting => 0, drain_cb => undef,
    }, $class;
    $self->{sock} = DaemonKit::IOAsync->listen_socket($a{fd});
    return $self;
}

sub start_accepting {
    my ($self) = @_;
    return if $self->{accepting} || !$self->{sock};
    $self->{accepting} = 1;
    $self->{loop}->watch_io(handle => $self->{sock}, on_read_ready => sub { $self->_accept });
}

sub stop_accepting {
    my ($self) = @_;
    return unless $self->{accepting};
    $self->{accepting} = 0;
    $self->{loop}->unwatch_io(handle => $self->{sock}, on_read_ready => 1);
}

# Stop accepting and close both our dup and the listening fd itself.
sub close_listener {
    my ($self) = @_;
    $self->stop_accepting;
    if (my $s = delete $self->{sock}) { close $s }
    POSIX::close($self->{fd}) if defined $self->{fd};
    undef $self->{fd};
}

sub _accept {
    my ($self) = @_;
    while ($self->{accepting}) {
        my $client = $self->{sock}->accept;
        unless ($client) {
            next if $!{EINTR} || $!{ECONNABORTED};
            last if $!{EAGAIN} || $!{EWOULDBLOCK};    # another worker took it
            print STDERR "dk-hello[$$]: accept: $!\n";
            last;
        }
        $self->_serve($client);
        if ($self->{max_requests} && ++$self->{accepted} >= $self->{max_requests}) {
            $self->stop_accepting;
            $self->{on_max}->() if $self->{on_max};
            $self->drain($self->{on_max_done} || sub {});
        }
    }
}

sub _serve {
    my ($self, $client) = @_;
    my $loop = $self->{loop};
    my $id = ++$self->{next_id};
    my $conn = { handled => 0 };
    my $stream;
    $stream = IO::Async::Stream->new(
        handle  => $client,
        on_read => sub {
            my ($s, $bufref, $eof) = @_;
            return 0 if $conn->{handled};
            my %env;
            my $r = parse_http_request($$bufref, \%env);
            if ($r == -1) {
                $self->_respond($s, $conn, 'BAD', '-', 400, "bad request\n");
            } elsif ($r == -2) {
                if (length $$bufref > 65536) {
                    $self->_respond($s, $conn, 'BAD', '-', 431, "request header too large\n");
                } elsif ($eof) {
                    $s->close_now;
                }
                return 0;
            } else {
                $self->_handle($s, $conn, \%env);
            }
            $$bufref = '';
            return 0;
        },
        on_read_error  => sub { $_[0]->close_now },
        on_write_error => sub { $_[0]->close_now },
        on_closed      => sub {
            $conn->{closed} = 1;
            $loop->unwatch_time($conn->{idle}) if $conn->{idle};
            delete $self->{conns}{$id};
            $self->_check_drained;
        },
    );
    $self->{conns}{$id} = $stream;
    # A client that never sends a whole request does not hold us forever.
    $conn->{idle} = $loop->watch_time(after => 10, code => sub {
        delete $conn->{idle};
        $self->_respond($stream, $conn, '-', '-', 408, "request timeout\n") unless $conn->{handled} || $conn->{closed};
    });
    $loop->add($stream);
}

sub _handle {
    my ($self, $s, $conn, $env) = @_;
    my $method = $env->{REQUEST_METHOD} // '-';
    my $target = $env->{REQUEST_URI} // '-';
    my $path = $env->{PATH_INFO} // '';
    $conn->{handled} = 1;
    if ($method ne 'GET' && $method ne 'HEAD') {
        return $self->_respond($s, $conn, $method, $target, 404, "not found\n");
    }
    if ($path eq '/') {
        return $self->_respond($s, $conn, $method, $target, 200, "hello from $main::LANG pid $$\n");
    }
    if ($path eq '/pid') {
        return $self->_respond($s, $conn, $method, $target, 200, "$$\n");
    }
    if ($path eq '/ids') {
        my ($gid, @rest) = split ' ', $(;
        my ($egid, @groups) = split ' ', $);
        my %seen;
        my $groups = join ',', grep { !$seen{$_}++ } @groups;
        return $self->_respond($s, $conn, $method, $target, 200,
            "uid=$< gid=$gid euid=$> egid=$egid groups=$groups\n");
    }
    if ($path eq '/slow') {
        my ($ms) = ($env->{QUERY_STRING} // '') =~ /(?:^|&)ms=(\d+)/;
        $ms = 1000 unless defined $ms;
        $ms = 600_000 if $ms > 600_000;
        # A timer, not a sleep: the loop keeps serving other connections.
        $conn->{timer} = $self->{loop}->watch_time(after => $ms / 1000, code => sub {
            delete $conn->{timer};
            $self->_respond($s, $conn, $method, $target, 200, "done\n");
        });
        return;
    }
    return $self->_respond($s, $conn, $method, $target, 404, "not found\n");
}

sub _respond {
    my ($self, $s, $conn, $method, $target, $status, $body) = @_;
    $conn->{handled} = 1;
    $self->{loop}->unwatch_time(delete $conn->{idle}) if $conn->{idle};
    return if $conn->{closed};
    my $head = "HTTP/1.1 $status $REASON{$status}\r\n"
        . "Content-Type: text/plain\r\n"
        . 'Content-Length: ' . length($body) . "\r\n"
        . "Connection: close\r\n\r\n";
    $s->write($method eq 'HEAD' ? $head : $head . $body);
    $s->close_when_empty;
    print STDOUT "$method $target $status pid=$$\n";
}

# Calls $cb once every connection is finished, or after the graceful timeout
# (then the rest are closed).
sub drain {
    my ($self, $cb) = @_;
    $self->{drain_cb} = $cb;
    my $loop = $self->{loop};
    $loop->unwatch_time($self->{drain_timer}) if $self->{drain_timer};
    $self->{drain_timer} = $loop->watch_time(after => $self->{graceful} || 0.001, code => sub {
        delete $self->{drain_timer};
        my @left = values %{ $self->{conns} };
        print STDERR "dk-hello[$$]: graceful timeout: closing " . scalar(@left) . " connection(s)\n" if @left;
        $_->close_now for @left;
        $self->_finish_drain;
    });
    # Let the loop settle first (a callback may still add a connection).
    $loop->later(sub { $self->_check_drained });
}

sub _check_drained {
    my ($self) = @_;
    return unless $self->{drain_cb};
    return if %{ $self->{conns} };
    $self->_finish_drain;
}

sub _finish_drain {
    my ($self) = @_;
    my $cb = delete $self->{drain_cb} or return;
    $self->{loop}->unwatch_time(delete $self->{drain_timer}) if $self->{drain_timer};
    $cb->();
}

package main;


# ---------------------------------------------------------------------------
# 1. Parse the command line.

my %opt = (listen => undef, workers => 0, 'graceful-timeout' => 30);

sub usage {
    my ($msg) = @_;
    print STDERR "dk-hello: $msg\n" if defined $msg;
    print STDERR "usage: $0 [--listen HOST:PORT] [-D|--daemonize] [--pid FILE] [--user USER]\n"
        . "       [--group GROUP] [-w|--workers N] [--max-requests N] [--log FILE] [--nofile N]\n"
        . "       [--graceful-timeout SECONDS] [--foreground-notify] [--notify-fd N]\n";
    exit 2;
}

Getopt::Long::Configure(qw(no_ignore_case no_auto_abbrev));
Getopt::Long::GetOptions(\%opt,
    'listen=s', 'daemonize|D', 'pid=s', 'user=s', 'group=s', 'workers|w=i',
    'max-requests=i', 'log=s', 'nofile=i', 'graceful-timeout=f', 'foreground-notify',
    'notify-fd=i',
    'help|h' => sub { usage() },
) or usage();
usage('unexpected arguments: ' . join(' ', @ARGV)) if @ARGV;
usage('--workers must be 0 or more') if $opt{workers} < 0;
usage('--graceful-timeout must be 0 or more') if $opt{'graceful-timeout'} < 0;
if (defined $opt{'max-requests'}) {
    usage('--max-requests must be at least 1') if $opt{'max-requests'} < 1;
    if (!$opt{workers}) {
        print STDERR "dk-hello: --max-requests needs workers (-w N): a single process "
            . "cannot replace itself after N requests\n";
        exit 2;
    }
}
usage('--group needs --user') if defined $opt{group} && !defined $opt{user};
usage('--notify-fd: expected a descriptor number of 3 or more (0..2 are stdio)')
    if defined $opt{'notify-fd'} && $opt{'notify-fd'} < 3;
# The daemon's working directory becomes /: make paths absolute now.
$opt{$_} = File::Spec->rel2abs($opt{$_}) for grep { defined $opt{$_} } qw(pid log);
my $graceful = $opt{'graceful-timeout'};

# What a re-exec (HUP) or a new generation (USR2) runs: our argv without --notify-fd N.
# Its fd is used up once we are ready, and in the new image fd N may be an inherited
# listener (LISTEN_FDS starts at 3).
our @REARGV;
{
    my @all = DaemonKit::self_argv();
    while (@all) {
        my $arg = shift @all;
        if ($arg =~ /^--?notify-fd\z/) { shift @all; next }
        next if $arg =~ /^--?notify-fd=/;
        push @REARGV, $arg;
    }
}

# s6 readiness: the library owns fd N from here on (close-on-exec, kept by
# daemonize's fd sweep) and ready() writes "\n" to it.
if (defined $opt{'notify-fd'}) {
    eval { DaemonKit::notify_fd($opt{'notify-fd'}); 1 } or do {
        print STDERR 'dk-hello: ', DaemonKit::message_of($@), "\n";    # notify_fd 9: Bad file descriptor
        exit 1;
    };
}

# ---------------------------------------------------------------------------
# 2. PID file, locked first (before binding and the fork): "already running" reaches the
#    terminal, also when the second start names the same fixed port.

my $pf;
if (defined $opt{pid}) {
    $pf = eval { DaemonKit::PidFile->open($opt{pid}) };
    unless ($pf) {
        print STDERR DaemonKit::message_of($@), "\n";      # "pid file F: daemon already running (PID: N)"
        exit 1;
    }
}

# ---------------------------------------------------------------------------
# 3. Listeners: inherited (socket activation, our own re-exec/upgrade) or bound. A bind
#    error reaches the terminal; the PID file we locked goes with us.

my $lfd;
my @inherited = eval { listen_fds(unset => 1) };
if ($@) {
    print STDERR 'dk-hello: ', DaemonKit::message_of($@), "\n";
    $pf->remove if $pf;
    exit 1;
}
if (@inherited) {
    $lfd = $inherited[0];
} else {
    my $addr = $opt{listen} // '127.0.0.1:8080';
    $lfd = eval { listen_tcp($addr) };
    unless (defined $lfd) {
        print STDERR DaemonKit::message_of($@), "\n";      # "127.0.0.1:8080: Address already in use"
        $pf->remove if $pf;                                # nothing written yet: ours to unlink
        exit 1;
    }
}
my $where = socket_name($lfd);
print STDERR "listening on $where\n";

# ---------------------------------------------------------------------------
# 4. Daemonize. The launcher exits inside this call with the daemon's verdict.

my $foreground = $opt{'foreground-notify'} || defined $opt{'notify-fd'} || !$opt{daemonize};
my $role = eval { daemonize(foreground => $foreground, keep => [$lfd], umask => 022) };
unless (defined $role) {
    print STDERR DaemonKit::message_of($@), "\n";
    exit 1;
}

# From here on every failure goes through fail() to the launcher.
sub startup_failed {
    my ($err) = @_;
    my $msg = DaemonKit::message_of($err);
    fail(1, $msg);
    $pf->remove if $pf && $pf->is_open;
    exit 1;
}

# 5. Log: stdout and stderr appended to --log.
if (defined $opt{log}) {
    eval { log_open($opt{log}); 1 } or do {
        my $err = $@;
        # After a re-exec or upgrade as an unprivileged user the root-owned log
        # may not be openable again; stdout/stderr were inherited still
        # pointing at it, so keep them (USR1 reopen is then unavailable).
        if ($role != DK_ROLE_DAEMON && ref $err && $err->errno == Errno::EACCES() && same_file(\*STDOUT, $opt{log})) {
            print STDERR "dk-hello: $opt{log}: cannot reopen as uid $>; keeping the inherited log (no USR1 reopen)\n";
        } else {
            startup_failed($err);
        }
    };
    # With --user, give the log to that user: a re-exec'd image or a new
    # generation (already unprivileged) must be able to open it again.
    if (defined $opt{user} && $> == 0) {
        my ($uid, $gid) = eval { user_lookup($opt{user}) };     # a bad name fails at step 8
        $gid = eval { group_lookup($opt{group}) } if defined $uid && defined $opt{group};
        chown($uid, $gid, \*STDOUT) if defined $uid && defined $gid;
    }
    print STDERR "listening on $where\n";    # now in the log too
}

sub same_file {
    my ($fh, $path) = @_;
    my @a = stat($fh);
    my @b = stat($path);
    return @a && @b && $a[0] == $b[0] && $a[1] == $b[1];
}

$| = 1;
STDERR->autoflush(1);

# 6. Write the pid (ours: after the fork).
eval { $pf->write; 1 } or startup_failed($@) if $pf;

# 7. Limits.
if (defined $opt{nofile}) {
    my $got = eval { rlimit_nofile($opt{nofile}) };
    startup_failed($@) unless defined $got;
    print STDERR "nofile limit set to $got\n";
}
eval { rlimit_disable_core(); 1 } or startup_failed($@);

# 8. Privileges (returns at once when already that user, as after a re-exec).
if (defined $opt{user}) {
    eval { drop_privileges($opt{user}, $opt{group}); 1 } or startup_failed($@);
}

# 9. Writing to a closed socket must give EPIPE, not death.
eval { signal_ignore_sigpipe(); 1 } or startup_failed($@);

# 10. Run.
if ($opt{workers}) {
    run_supervisor();
} else {
    run_single();
}
exit 0;

# ---------------------------------------------------------------------------
# Single process: one IO::Async loop watching the listener, the connections
# and the library's signal fd.

sub run_single {
    my $loop = DaemonKit::IOAsync->new_loop;     # after daemonize: it closed inherited fds
    my $server = DkHello::Server->new(loop => $loop, fd => $lfd, graceful => $graceful);
    my $busy = 0;     # a stop, reload or upgrade is under way

    my $stop = sub {
        my (undef, $name) = @_;
        return if $busy eq 'stop';
        $busy = 'stop';
        print STDERR "dk-hello[$$]: SIG$name: stopping\n";
        eval { notify_stopping() };
        $server->close_listener;
        $server->drain(sub {
            if ($pf) {
                $pf->remove or print STDERR "dk-hello[$$]: pid file left behind: $!\n";
            }
            $loop->stop;
        });
    };

    my $reload = sub {
        return if $busy;
        $busy = 'reload';
        print STDERR "dk-hello[$$]: SIGHUP: re-executing in place\n";
        eval { notify_reloading() };
        $server->stop_accepting;         # the listener stays open: connections queue
        $server->drain(sub {
            eval { reexec(argv => \@REARGV, fds => [$lfd], pidfile => $pf) };    # returns only on failure
            print STDERR "dk-hello[$$]: ", DaemonKit::message_of($@), "; still serving\n";
            $server->start_accepting;
            eval { notify('READY=1') };
            $busy = 0;
        });
    };

    my $upgrade = sub {
        return if $busy;
        $busy = 'upgrade';
        print STDERR "dk-hello[$$]: SIGUSR2: starting a new generation\n";
        my $new = eval { upgrade(argv => \@REARGV, fds => [$lfd], pidfile => $pf, timeout => 30) };
        unless ($new) {
            print STDERR "dk-hello[$$]: ", DaemonKit::message_of($@), "; still serving\n";
            $busy = 0;
            return;
        }
        print STDERR "dk-hello[$$]: new generation $new is ready; draining\n";
        $busy = 'stop';
        $server->close_listener;
        $server->drain(sub {
            $pf->close if $pf;           # not remove: the file holds the new pid
            $loop->stop;
        });
    };

    DaemonKit::IOAsync->watch_signals($loop,
        TERM => $stop, INT => $stop, QUIT => $stop,
        HUP  => $reload,
        USR2 => $upgrade,
        USR1 => sub {
            eval { log_reopen(); 1 } or print STDERR "dk-hello[$$]: ", DaemonKit::message_of($@), "\n";
        },
    );
    $server->start_accepting;
    eval { ready(); 1 } or print STDERR "dk-hello[$$]: ", DaemonKit::message_of($@), "\n";
    $loop->run;
}

# ---------------------------------------------------------------------------
# Prefork: the master is libdaemonkit's supervisor; each worker is a fresh
# IO::Async loop on the shared listener.

sub run_supervisor {
    my $sv = DaemonKit::Supervisor->new(
        workers          => $opt{workers},
        graceful_timeout => $graceful,
        listeners        => [$lfd],
        ($pf ? (pidfile => $pf) : ()),
        upgrade          => [@REARGV],
        upgrade_timeout  => 30,
        worker           => DaemonKit::IOAsync->worker(\&worker_main),
    );
    $sv->run;           # HUP/TTIN/TTOU/TERM/INT/QUIT/USR1/USR2 and ready() are the library's
    $pf->close if $pf;  # stopped: already unlinked; upgraded: the file is the new master's
}

# Runs in each forked worker, inside DaemonKit::IOAsync->worker: that gave us
# a fresh loop (never the master's) and ignored SIGPIPE again (the worker
# started with every signal disposition at its default).
sub worker_main {
    my ($loop, $index) = @_;
    my $server = DkHello::Server->new(
        loop => $loop, fd => $lfd, graceful => $graceful,
        max_requests => $opt{'max-requests'},
        on_max => sub { print STDERR "dk-hello[$$]: served $opt{'max-requests'} requests; leaving\n" },
    );
    my $stopping = 0;
    my $stop = sub {
        return if $stopping++;
        $server->stop_accepting;
        $server->drain(sub { $loop->stop });
    };
    $server->{on_max_done} = sub { $loop->stop };
    DaemonKit::IOAsync->watch_signals($loop,
        TERM => $stop, INT => $stop, QUIT => $stop,
        USR1 => sub {
            eval { log_reopen(); 1 } or print STDERR "dk-hello[$$]: ", DaemonKit::message_of($@), "\n";
        },
    );
    $server->start_accepting;
    ready();            # tells the master this worker accepts connections
    $loop->run;
    return 0;
}
