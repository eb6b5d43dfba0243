package DaemonKit::IOAsync;

use strict;
use warnings;
use Carp ();
use IO::Async::Loop ();
# Loaded now, not when the first loop is built: a daemon that dropped privileges may no
# longer read @INC (a 0700 checkout), and the loop class probe would then find nothing.
use IO::Async::Loop::Poll ();
use IO::Async::Loop::Select ();
use IO::Socket ();
use IO::Socket::INET ();
use IO::Socket::UNIX ();
use Socket ();
use POSIX ();

use DaemonKit ();
use DaemonKit::IOAsync::Signals ();

our $VERSION = '0.1.0';

=head1 NAME

DaemonKit::IOAsync - run DaemonKit's signal fd and prefork workers under IO::Async

=head1 SYNOPSIS

    use DaemonKit qw(:all);
    use DaemonKit::IOAsync;

    # single process, after daemonize():
    my $loop = DaemonKit::IOAsync->new_loop;
    my $signals = DaemonKit::IOAsync->watch_signals($loop,
        TERM => sub { $loop->stop },
        HUP  => sub { ... },
        USR1 => sub { log_reopen() },
    );

    # prefork: each worker gets a fresh loop (never the master's)
    my $sv = DaemonKit::Supervisor->new(
        workers   => 4,
        listeners => [$lfd],
        worker    => DaemonKit::IOAsync->worker(sub {
            my ($loop, $index) = @_;
            my $sock = DaemonKit::IOAsync->listen_socket($lfd);
            ...                                   # IO::Async::Listener on $sock
            DaemonKit::IOAsync->watch_signals($loop, TERM => sub { $loop->stop });
            ready();
            $loop->run;
            return 0;
        }),
    );

=head1 DESCRIPTION

libdaemonkit turns signals into a readable fd (a self-pipe); this module
watches it with an L<IO::Async::Handle> and dispatches each signal to a Perl
callback, so signal handling is ordinary loop work - no Perl code runs in a
signal handler.

B<One owner per signal.> IO::Async's C<watch_signal> (and L<IO::Async::Signal>)
install Perl C<%SIG> handlers; the library installs its own C handler for the
signals you give it. Use one or the other for a given signal:
L</watch_signals> refuses a signal that already has a C<%SIG> code handler,
and a later C<watch_signal> of the same signal would silently take it away
from the library. Likewise IO::Async's C<watch_process>/C<fork>/
L<IO::Async::Process> reap with C<waitpid(-1)> and own C<SIGCHLD>: never use
them in a process that runs a L<DaemonKit::Supervisor> master
(C<< DaemonKit::Supervisor->run >> refuses while C<$SIG{CHLD}> has a Perl
handler).

B<A fresh loop in every worker.> C<< IO::Async::Loop->new >> returns one
shared loop per process (C<$IO::Async::Loop::ONE_TRUE_LOOP>); after a fork the
child would inherit the master's loop, its watches and timers (the PAGI
FIXFORK bug). L</new_loop> forgets the inherited one and builds a new one, and
L<DaemonKit::Supervisor> already forgets it in every worker; L</worker> wraps a
worker so it is handed its own loop.

=head1 CLASS METHODS

=head2 new_loop

    my $loop = DaemonKit::IOAsync->new_loop;

A new L<IO::Async::Loop> that is not the one inherited from a parent
process; it also becomes the process's shared loop, so later
C<< IO::Async::Loop->new >> calls in this process return it. Create your
loop B<after> L<DaemonKit/daemonize> (which closes inherited fds) and anew in
every worker.

=cut

sub new_loop {
    no warnings 'once';
    undef $IO::Async::Loop::ONE_TRUE_LOOP;
    my $loop = IO::Async::Loop->new;
    $IO::Async::Loop::ONE_TRUE_LOOP = $loop;
    return $loop;
}

=head2 worker

    my $entry = DaemonKit::IOAsync->worker(sub { my ($loop, $index) = @_; ...; return 0 });

Wraps a worker body for L<DaemonKit::Supervisor/set_worker>: in the worker
process it ignores SIGPIPE again (IO::Async expects it ignored, as it sets
when loaded, but workers start with every disposition at its default), builds
a fresh loop with L</new_loop> and calls the body with it and the worker
index. The body's return value is the worker's exit status.

=cut

sub worker {
    my ($class, $code) = @_;
    Carp::croak('DaemonKit::IOAsync->worker needs a code reference') unless ref $code eq 'CODE';
    return sub {
        my ($index) = @_;
        DaemonKit::signal_ignore_sigpipe();
        $SIG{PIPE} = 'IGNORE';          # and let %SIG say so
        my $loop = $class->new_loop;
        return $code->($loop, $index);
    };
}

=head2 watch_signals

    my $notifier = DaemonKit::IOAsync->watch_signals($loop, TERM => sub { ... }, HUP => sub { ... });

Registers the signals with the library (L<DaemonKit/signal_open>), adds a
L<DaemonKit::IOAsync::Signals> notifier watching the signal fd to C<$loop>,
and returns it. Each callback is called as C<< $cb->($notifier, 'TERM', 15) >>
from the loop. Croaks if a signal already has a C<%SIG> code handler
(e.g. from IO::Async's C<watch_signal>).

=cut

sub watch_signals {
    my ($class, $loop, %handlers) = @_;
    my $n = DaemonKit::IOAsync::Signals->new(signals => \%handlers);
    $loop->add($n);
    return $n;
}

=head2 listen_socket

    my $sock = DaemonKit::IOAsync->listen_socket($fd);

An L<IO::Socket::INET> (L<IO::Socket::IP> for IPv6, L<IO::Socket::UNIX> for Unix sockets) on a B<duplicate> of the
listening fd, non-blocking and close-on-exec, for L<IO::Async::Listener> or
your own accept loop. The original fd stays yours to pass to
L<DaemonKit/reexec>, L<DaemonKit/upgrade> or a supervisor; closing the
returned socket does not close it.

=cut

sub listen_socket {
    my ($class, $fd) = @_;
    my $n = DaemonKit::_fd($fd, 'listen_socket');
    # A duplicate we own (new_from_fd on a number would alias fd $n itself,
    # and closing the socket would then close the caller's listener).
    my $dup = POSIX::dup($n);
    Carp::croak("listen_socket: dup fd $n: $!") unless defined $dup;
    DaemonKit::fd_set_cloexec($dup, 1);
    my $sock = IO::Socket::INET->new_from_fd($dup, 'r+');
    unless ($sock) {
        my $err = $!;
        POSIX::close($dup);
        Carp::croak("listen_socket: fd $n: $err");
    }
    my $packed = getsockname($sock);
    Carp::croak("listen_socket: fd $n is not a socket") unless defined $packed;
    my $family = Socket::sockaddr_family($packed);
    if ($family == Socket::AF_UNIX()) {
        bless $sock, 'IO::Socket::UNIX';
    } elsif ($family != Socket::AF_INET()) {
        require IO::Socket::IP;
        bless $sock, 'IO::Socket::IP';
    }
    $sock->blocking(0);
    return $sock;
}

1;
