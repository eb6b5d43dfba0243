package DaemonKit::Supervisor;

use strict;
use warnings;
use Errno ();
use POSIX ();
use Scalar::Util ();

use DaemonKit ();
use DaemonKit::FFI ();

our $VERSION = '0.1.0';

=head1 NAME

DaemonKit::Supervisor - a prefork master with Perl workers on libdaemonkit

=head1 SYNOPSIS

    use DaemonKit qw(:all);
    use DaemonKit::Supervisor;

    my $sv = DaemonKit::Supervisor->new(
        workers          => 4,
        graceful_timeout => 30,                    # seconds
        listeners        => [$listen_fd],
        pidfile          => $pf,
        upgrade          => [ DaemonKit::self_argv() ],   # USR2
        worker           => sub {
            my ($index) = @_;
            # serve on $listen_fd; ready() once accepting; on TERM finish and return 0
            return 0;
        },
        on_event => sub { my ($kind, $pid, $value, $name) = @_; warn "$name $pid $value\n" },
    );
    my $outcome = $sv->run;        # DK_SUPERVISOR_STOPPED or DK_SUPERVISOR_UPGRADED
    $pf->close;
    exit 0;

=head1 DESCRIPTION

The master runs inside libdaemonkit (C<dk_supervisor_run>): it forks the
workers, reaps only its own children, respawns crashed ones with a crash-loop
throttle, rolls workers on C<HUP> (new one ready before an old one stops),
adds or removes one on C<TTIN>/C<TTOU>, stops gracefully on C<TERM>/C<INT>/
C<QUIT>, reopens the log on C<USR1> (and forwards it), upgrades on C<USR2>,
and calls L<DaemonKit/ready> once every initial worker is ready. Workers die
with the master.

=head2 Perl workers

Each worker is a forked child that calls your C<worker> code with its index
and exits with its return value (0: a clean exit, e.g. max-requests reached,
replaced at once; anything else counts as a crash). Before that, in the
child:

=over 4

=item *

every C<%SIG> code handler inherited from the master is reset to
C<DEFAULT> (the library already reset the kernel dispositions and the mask);

=item *

every other C<%SIG> entry (C<IGNORE>) reads C<DEFAULT> as well: B<SIGPIPE is
no longer ignored> in a worker, even if the master ignored it - call
L<DaemonKit/signal_ignore_sigpipe> first thing in a worker that writes to
sockets (L<DaemonKit::IOAsync/worker> does);

=item *

IO::Async's shared loop (C<$IO::Async::Loop::ONE_TRUE_LOOP>) is forgotten,
so C<< IO::Async::Loop->new >> in the worker builds a fresh loop instead of
reusing the master's (the PAGI FIXFORK bug) - see L<DaemonKit::IOAsync>;

=item *

your C<post_fork> hook runs.

=back

A worker that B<dies> is reported as a failed worker: its message goes to
the master's log (stderr) as C<worker PID (index N) died: MESSAGE>, it is
passed to L<DaemonKit/fail> (so the master logs a worker startup failure if
it had not reported ready) and the worker exits 1. STDOUT and STDERR are
flushed before the worker exits (the library leaves with C<_exit>, so Perl
buffers would otherwise be lost; flush or close any other handle you wrote
to before returning). A worker that calls C<exit> leaves with
that status without running the master's C<END> blocks or destructors.

Workers start with default signal dispositions: a worker should call
C<< DaemonKit::signal_open(qw(TERM INT QUIT USR1)) >> (or use
L<DaemonKit::IOAsync>), call L<DaemonKit/ready> once it polls the listener,
finish in-flight requests and return 0 on C<TERM>, and call
L<DaemonKit/log_reopen> on C<USR1>.

=head1 METHODS

=head2 new

    my $sv = DaemonKit::Supervisor->new(%options);

Creates a supervisor (1 worker, 30 s graceful timeout, 2 s ready timeout,
60 s upgrade timeout) and applies the options, each the same as calling the
setter below: C<workers>, C<graceful_timeout>, C<ready_timeout>, C<worker>,
C<exec>, C<post_fork>, C<on_event>, C<listeners> (array of fds or handles),
C<listen_names>, C<pidfile>, C<upgrade> (argv array), C<upgrade_timeout>,
C<stop_signal>, C<max_backoff>, C<give_up> (C<[N, SECONDS]>), C<flags>,
C<stdio>.

=cut

my %EVENT_NAME = (
    1 => 'spawned', 2 => 'exited', 3 => 'respawn_delayed', 4 => 'worker_ready',
    5 => 'ready', 6 => 'reloading', 7 => 'reloaded', 8 => 'stopping', 9 => 'killed',
    10 => 'upgrade_started', 11 => 'upgrade_ready', 12 => 'upgrade_failed',
    13 => 'log_reopened', 14 => 'workers_changed', 15 => 'worker_failed',
    16 => 'reload_failed', 17 => 'gave_up',
);

sub new {
    my ($class, %o) = @_;
    DaemonKit::_check_opts('DaemonKit::Supervisor->new', \%o,
        qw(workers graceful_timeout ready_timeout worker exec post_fork on_event listeners listen_names pidfile upgrade upgrade_timeout
           stop_signal max_backoff give_up flags stdio));
    my $h;
    my $r = DaemonKit::FFI::dk_supervisor_new(\$h);
    DaemonKit::_fail_op('dk_supervisor_new', $r, 'supervisor') if $r < 0;
    my $self = bless { h => $h, keep => {} }, $class;
    # Our own post-fork hook always runs: it cleans the child up for Perl.
    $self->_install_post_fork;
    $self->set_workers($o{workers})                   if defined $o{workers};
    $self->set_graceful_timeout($o{graceful_timeout}) if defined $o{graceful_timeout};
    $self->set_ready_timeout($o{ready_timeout})       if defined $o{ready_timeout};
    $self->set_worker($o{worker})                     if defined $o{worker};
    $self->set_exec(@{ $o{exec} })                    if defined $o{exec};
    $self->set_post_fork($o{post_fork})               if defined $o{post_fork};
    $self->set_event($o{on_event})                    if defined $o{on_event};
    $self->add_listener($_) for @{ $o{listeners} || [] };
    $self->set_listen_names($o{listen_names})         if defined $o{listen_names};
    $self->set_pidfile($o{pidfile})                   if defined $o{pidfile};
    $self->set_upgrade($o{upgrade}, $o{upgrade_timeout}) if defined $o{upgrade};
    $self->set_stop_signal($o{stop_signal})           if defined $o{stop_signal};
    $self->set_restart(max_backoff => $o{max_backoff}, give_up => $o{give_up})
        if defined $o{max_backoff} || defined $o{give_up};
    $self->set_flags($o{flags})                       if defined $o{flags};
    $self->set_stdio($o{stdio})                       if defined $o{stdio};
    return $self;
}

sub _h {
    my ($self) = @_;
    DaemonKit::_throw('dk_supervisor', -Errno::EBADF(), 'supervisor: already freed') unless defined $self->{h};
    $self->{h};
}

sub _check {
    my ($self, $op, $r, $what) = @_;
    DaemonKit::_fail_op($op, $r, "supervisor: $what") if $r < 0;
    return $self;
}

=head2 set_workers

    $sv->set_workers(4);     # 1 .. DK_SUPERVISOR_MAX_WORKERS (256)

=head2 set_graceful_timeout

    $sv->set_graceful_timeout(30);    # seconds; after TERM, workers still running then are killed

=head2 set_ready_timeout

    $sv->set_ready_timeout(2);        # seconds a new worker may take to call ready()

=cut

sub set_workers {
    my ($self, $n) = @_;
    DaemonKit::_usage("supervisor: workers must be 1..256, not '" . ($n // 'undef') . "'")
        unless defined $n && $n =~ /^\d+\z/ && $n >= 1 && $n <= DaemonKit::DK_SUPERVISOR_MAX_WORKERS();
    $self->_check('dk_supervisor_set_workers', DaemonKit::FFI::dk_supervisor_set_workers($self->_h, $n), "set workers $n");
}

sub set_graceful_timeout {
    my ($self, $secs) = @_;
    my $ms = DaemonKit::_ms($secs, 'supervisor: graceful_timeout');
    $self->_check('dk_supervisor_set_graceful_timeout', DaemonKit::FFI::dk_supervisor_set_graceful_timeout($self->_h, $ms), 'graceful timeout');
}

sub set_ready_timeout {
    my ($self, $secs) = @_;
    my $ms = DaemonKit::_ms($secs, 'supervisor: ready_timeout');
    $self->_check('dk_supervisor_set_ready_timeout', DaemonKit::FFI::dk_supervisor_set_ready_timeout($self->_h, $ms), 'ready timeout');
}

# --- the Perl side of a worker process ------------------------------------

our $IN_WORKER = 0;     # the worker's pid once in a worker
our $WORKER_INDEX;

sub _flush_std {
    for my $fh (\*STDOUT, \*STDERR) {
        eval { $fh->flush } if defined fileno($fh);
    }
}

sub _child_setup {
    my ($index) = @_;
    $IN_WORKER = $$;
    $WORKER_INDEX = $index;
    # The library reset the kernel dispositions (SIGPIPE included); make %SIG
    # agree, so nothing the master set up runs or seems to apply in the worker.
    for my $sig (keys %SIG) {
        next if $sig =~ /^__/;
        my $v = $SIG{$sig};
        next if !defined $v || $v eq '' || $v eq 'DEFAULT';
        local $@;
        eval { $SIG{$sig} = 'DEFAULT' };
    }
    # FIXFORK: never share the master's IO::Async loop.
    { no warnings 'once'; undef $IO::Async::Loop::ONE_TRUE_LOOP; }
    # A worker that calls exit() must not run the master's END blocks or
    # destructors (temp dirs, PID files, sockets); an END block compiled now
    # runs before all the others.
    eval 'END { DaemonKit::Supervisor::_worker_end() } 1' or warn $@;
}

sub _worker_end {
    return unless $IN_WORKER && $$ == $IN_WORKER;
    _flush_std();
    POSIX::_exit($? & 0xff);
}

sub _die_report {
    my ($what, $index, $err) = @_;
    my $msg = DaemonKit::message_of($err);
    $msg = 'died' unless length $msg;
    my $line = "worker $$ (index $index) $what: $msg";
    _flush_std();
    # dk_fail prints it on stderr (the master's log) and, if the worker had
    # not reported ready yet, tells the master it failed.
    eval { DaemonKit::fail(1, $line); 1 } or print STDERR "$line\n";
    _flush_std();
}

sub _install_post_fork {
    my ($self) = @_;
    my $state = $self->{child_state} = { user_hook => undef, failed => 0 };
    my $closure = DaemonKit::FFI::ffi()->closure(sub {
        my (undef, $index) = @_;
        $state->{failed} = 0;
        _child_setup($index);
        if (my $hook = $state->{user_hook}) {
            local $@;
            unless (eval { $hook->($index); 1 }) {
                _die_report('post_fork hook died', $index, $@);
                $state->{failed} = 1;
            }
        }
    });
    $self->{keep}{post_fork} = $closure;
    $self->_check('dk_supervisor_set_post_fork', DaemonKit::FFI::dk_supervisor_set_post_fork($self->_h, $closure, undef), 'post-fork hook');
}

=head2 set_worker

    $sv->set_worker(sub { my ($index) = @_; ...; return 0 });

The worker entry, run in each forked worker with its slot index (0..N-1,
reused). Its return value is the worker's exit status. See L</Perl workers>
for what happens around it, and for a die.

=cut

sub set_worker {
    my ($self, $code) = @_;
    DaemonKit::_usage('supervisor: worker must be a code reference') unless ref $code eq 'CODE';
    my $state = $self->{child_state};
    my $closure = DaemonKit::FFI::ffi()->closure(sub {
        my (undef, $index) = @_;
        return 1 if $state->{failed};
        my $status;
        {
            local $@;
            my $ok = eval { $status = $code->($index); 1 };
            unless ($ok) {
                _die_report('died', $index, $@);
                return 1;
            }
        }
        _flush_std();
        $status = 0 unless defined $status;
        $status = 1 unless $status =~ /^-?\d+\z/;
        return $status & 0xff;
    });
    $self->{keep}{worker} = $closure;
    $self->{keep}{worker_code} = $code;
    $self->_check('dk_supervisor_set_worker', DaemonKit::FFI::dk_supervisor_set_worker($self->_h, $closure, undef), 'worker');
}

=head2 set_exec

    $sv->set_exec('/usr/bin/perl', '/srv/app/worker.pl', '--worker');

Makes each worker exec this program instead of calling a Perl worker: the
listeners arrive as fds 3.. with C<LISTEN_FDS> (use L<DaemonKit/listen_fds>)
and the readiness pipe in C<DAEMONKIT_READY_FD> (the new program calls
L<DaemonKit/daemonize> with C<< foreground => 1 >> to pick it up, then
L<DaemonKit/ready>). The argv is kept for the supervisor's life.

=cut

sub set_exec {
    my ($self, @argv) = @_;
    DaemonKit::_usage('supervisor: exec needs a program') unless @argv;
    my $a = DaemonKit::FFI::c_string_array(@argv);
    $self->{keep}{exec} = $a;
    $self->_check('dk_supervisor_set_exec', DaemonKit::FFI::dk_supervisor_set_exec($self->_h, $a->ptr), "exec $argv[0]");
}

=head2 set_post_fork

    $sv->set_post_fork(sub { my ($index) = @_; ... });   # undef clears

Runs in each worker right after the fork, before the worker entry: rebuild
per-process state (event loops, database handles) here. If it dies the
worker is reported failed and exits 1 without running the entry.

=cut

sub set_post_fork {
    my ($self, $code) = @_;
    DaemonKit::_usage('supervisor: post_fork must be a code reference or undef') if defined $code && ref $code ne 'CODE';
    $self->{child_state}{user_hook} = $code;
    return $self;
}

=head2 set_event

    $sv->set_event(sub { my ($kind, $pid, $value, $name) = @_; ... });   # undef: library's default log lines

Called in the master's loop for every C<DK_EVENT_*> (C<$name> is e.g.
C<'spawned'>, C<'exited'>; see L</event_name>). A die inside it is caught
and warned. Without a callback the library logs one line per event on
stderr.

=cut

sub set_event {
    my ($self, $code) = @_;
    DaemonKit::_usage('supervisor: on_event must be a code reference or undef') if defined $code && ref $code ne 'CODE';
    my $closure;
    if ($code) {
        $closure = DaemonKit::FFI::ffi()->closure(sub {
            my (undef, $kind, $pid, $value) = @_;
            local $@;
            eval { $code->($kind, $pid, $value, event_name($kind)); 1 }
                or warn "daemonkit: supervisor event callback died: $@";
            return;
        });
    }
    $self->{keep}{event} = $closure;
    $self->_check('dk_supervisor_set_event', DaemonKit::FFI::dk_supervisor_set_event($self->_h, $closure, undef), 'event callback');
}

=head2 event_name

    my $name = DaemonKit::Supervisor::event_name(DaemonKit::DK_EVENT_EXITED);   # 'exited'

=head2 describe_event

    my $line = DaemonKit::Supervisor::describe_event($kind, $pid, $value);

The library's one description of an event (C<dk_event_describe>: the text of
its default log line), for your own logger (e.g. C<worker 4242 exited with
status 1>).

=cut

sub event_name { my $k = shift; $EVENT_NAME{$k} // "event_$k" }

sub describe_event {
    my ($kind, $pid, $value) = @_;
    my $buf = "\0" x 256;
    my $ptr = unpack('Q', pack('p', $buf));   # $buf outlives the call
    my $n = DaemonKit::FFI::dk_event_describe($kind // 0, $pid // 0, $value // 0, $ptr, length $buf);
    DaemonKit::_fail_op('dk_event_describe', $n, 'describe_event') if $n < 0;
    return substr($buf, 0, $n < 256 ? $n : 255);
}

=head2 add_listener

    $sv->add_listener($fd_or_handle);

A listening fd the workers inherit and an upgrade passes on (at most 62).
Croaks C<supervisor: add listener fd N: Bad file descriptor>.

=cut

sub add_listener {
    my ($self, $fd) = @_;
    my $n = DaemonKit::_fd($fd, 'supervisor: listener');
    $self->_check('dk_supervisor_add_listener', DaemonKit::FFI::dk_supervisor_add_listener($self->_h, $n), "add listener fd $n");
}

=head2 add_listener_pair

    $sv->add_listener_pair($a, $b);   # two listen_tcp($addr, reuseport => 1) on one address, $a first

A listener as a pair of C<SO_REUSEPORT> TCP sockets: the generations
alternate between them, and a rolling restart switches new connections to the
new generation's socket before the old workers are told to stop, so a server
that drops connections it has just accepted when told to stop loses none.
Croaks C<supervisor: add listener pair: Invalid argument> unless both are such
listening sockets on the same address.

=cut

sub add_listener_pair {
    my ($self, $a, $b) = @_;
    my $na = DaemonKit::_fd($a, 'supervisor: listener');
    my $nb = DaemonKit::_fd($b, 'supervisor: listener');
    $self->_check('dk_supervisor_add_listener_pair', DaemonKit::FFI::dk_supervisor_add_listener_pair($self->_h, $na, $nb),
        "add listener pair fds $na, $nb");
}

=head2 add_listener_slots

    $sv->add_listener_slots(@fds);   # N listen_tcp($addr, reuseport => 1) on one address

A listener as one C<SO_REUSEPORT> TCP socket per worker slot: worker slot I<i>
accepts on C<$fds[i % N]> only (found at the first one's fd number), and the
master holds them all, so a slot's accept queue outlives its worker. The worker
count never goes below N. At most one such listener, not with
L</add_listener_pair>. Croaks C<supervisor: add listener slots: Invalid
argument> unless they are such listening sockets on one address.

=cut

sub add_listener_slots {
    my ($self, @fds) = @_;
    my @n = map { DaemonKit::_fd($_, 'supervisor: listener') } @fds;
    my ($ptr, $count, $buf) = DaemonKit::FFI::int_array(@n);
    $self->_check('dk_supervisor_add_listener_slots',
        DaemonKit::FFI::dk_supervisor_add_listener_slots($self->_h, $ptr, $count),
        "add listener slots fds @n");
}

=head2 set_listen_names

    $sv->set_listen_names('http:admin');    # or ['http', 'admin']; undef clears

C<LISTEN_FDNAMES> for exec'd workers and upgrades.

=cut

sub set_listen_names {
    my ($self, $names) = @_;
    $names = join(':', @$names) if ref $names eq 'ARRAY';
    my $s = defined $names ? DaemonKit::FFI::c_string($names) : undef;
    $self->{keep}{names} = $s;
    $self->_check('dk_supervisor_set_listen_names', DaemonKit::FFI::dk_supervisor_set_listen_names($self->_h, $s ? $s->ptr : undef), 'listen names');
}

=head2 set_pidfile

    $sv->set_pidfile($pf);      # a DaemonKit::PidFile; undef clears

The master unlinks it after a graceful stop, hands it over on upgrade and
rewrites it on a rollback; workers close their copy at start. The object is
kept referenced for the supervisor's life.

=cut

sub set_pidfile {
    my ($self, $pf) = @_;
    if (defined $pf) {
        DaemonKit::_usage('supervisor: pidfile must be a DaemonKit::PidFile')
            unless Scalar::Util::blessed($pf) && $pf->isa('DaemonKit::PidFile');
    }
    $self->{keep}{pidfile} = $pf;
    $self->_check('dk_supervisor_set_pidfile', DaemonKit::FFI::dk_supervisor_set_pidfile($self->_h, $pf ? $pf->_handle : undef), 'pid file');
}

=head2 set_upgrade

    $sv->set_upgrade([ DaemonKit::self_argv() ], 30);   # argv, timeout in seconds (0: 60 s)

Enables C<USR2> upgrades: the new generation runs this argv (absolute
program path first) and must report L<DaemonKit/ready> within the timeout.

=cut

sub set_upgrade {
    my ($self, $argv, $timeout) = @_;
    DaemonKit::_usage('supervisor: upgrade needs an argv array') unless ref $argv eq 'ARRAY' && @$argv;
    my $a = DaemonKit::FFI::c_string_array(@$argv);
    $self->{keep}{upgrade} = $a;
    my $ms = DaemonKit::_ms($timeout, 'supervisor: upgrade timeout');
    $self->_check('dk_supervisor_set_upgrade', DaemonKit::FFI::dk_supervisor_set_upgrade($self->_h, $a->ptr, $ms), "upgrade $argv->[0]");
}

=head2 set_stop_signal

    $sv->set_stop_signal('QUIT');     # what stops a worker (default TERM): an old one on HUP, TTOU, a graceful stop

=head2 set_restart

    $sv->set_restart(max_backoff => 30, give_up => [5, 60]);   # seconds; give up after 5 crashes in 60 s

The crash-loop backoff (1 s, doubling every third crash at start) is capped
at C<max_backoff> seconds (default 8). With C<give_up>, C<N> crashes within
C<SECONDS> stop every worker, emit C<gave_up> and make L</run> return
C<DK_SUPERVISOR_GAVE_UP>. Croaks for more than 64 crashes or a zero window.

=head2 set_flags

    $sv->set_flags(DK_SUPERVISOR_REAP_ALL | DK_SUPERVISOR_ONCE);

C<DK_SUPERVISOR_REAP_ALL> (reap every orphan: PID 1 or a child subreaper),
C<DK_SUPERVISOR_ONCE> (one worker run once, its signals forwarded, its status
in L</exit_status>), C<DK_SUPERVISOR_SIGNAL_GROUP> (signals go to the
worker's process group).

=head2 set_stdio

    $sv->set_stdio(sub { my ($index) = @_; ...; return $fd });   # or -1 / undef: inherit

Runs in the master before each fork: the fd returned becomes that worker's
STDOUT and STDERR (the master closes it after the fork, so hand over a fresh
one, e.g. a pipe's write end whose read end you keep).

=head2 exit_status

    my $code = $sv->exit_status;      # after run: the worker's status in a ONCE run, else 0

=cut

sub set_stop_signal {
    my ($self, $sig) = @_;
    my $n = DaemonKit::signal_number($sig);
    $self->_check('dk_supervisor_set_stop_signal', DaemonKit::FFI::dk_supervisor_set_stop_signal($self->_h, $n),
        'stop signal ' . DaemonKit::signal_name($n));
}

sub set_restart {
    my ($self, %o) = @_;
    DaemonKit::_check_opts('supervisor: set_restart', \%o, qw(max_backoff give_up));
    my $max = defined $o{max_backoff} ? DaemonKit::_ms($o{max_backoff}, 'supervisor: max_backoff') : 0;
    my ($n, $win) = (0, 0);
    if (defined $o{give_up}) {
        DaemonKit::_usage('supervisor: give_up must be [N, SECONDS]')
            unless ref $o{give_up} eq 'ARRAY' && @{ $o{give_up} } == 2;
        ($n, $win) = ($o{give_up}[0], DaemonKit::_ms($o{give_up}[1], 'supervisor: give_up window'));
    }
    $self->_check('dk_supervisor_set_restart', DaemonKit::FFI::dk_supervisor_set_restart($self->_h, $max, $n, $win),
        "restart policy (give up after $n crashes)");
}

sub set_flags {
    my ($self, $flags) = @_;
    $self->_check('dk_supervisor_set_flags', DaemonKit::FFI::dk_supervisor_set_flags($self->_h, $flags // 0), 'flags');
}

sub set_stdio {
    my ($self, $code) = @_;
    DaemonKit::_usage('supervisor: stdio must be a code reference or undef') if defined $code && ref $code ne 'CODE';
    my $closure;
    if ($code) {
        $closure = DaemonKit::FFI::ffi()->closure(sub {
            my (undef, $index) = @_;
            my $fd;
            local $@;
            eval { $fd = $code->($index); 1 } or warn "daemonkit: supervisor stdio callback died: $@";
            $fd = fileno($fd) if ref $fd;
            return defined $fd && $fd =~ /^\d+\z/ ? $fd : -1;
        });
    }
    $self->{keep}{stdio} = $closure;
    $self->_check('dk_supervisor_set_stdio', DaemonKit::FFI::dk_supervisor_set_stdio($self->_h, $closure, undef), 'stdio callback');
}

sub exit_status {
    my ($self) = @_;
    return DaemonKit::FFI::dk_supervisor_exit_status($self->_h);
}

=head2 run

    my $outcome = $sv->run;

Runs the master until a graceful stop (returns C<DK_SUPERVISOR_STOPPED>, 0:
the PID file was unlinked), a completed upgrade (C<DK_SUPERVISOR_UPGRADED>,
1: leave the PID file alone) or the restart policy giving up
(C<DK_SUPERVISOR_GAVE_UP>, 2: exit non-zero); exit 0 in the first two cases after
C<< $pidfile->close >>. STDOUT and STDERR are flushed before the workers
fork. Never returns in a worker. Croaks C<supervisor: run: ...>
(C<EINVAL>: no worker set). Refuses to run while C<$SIG{CHLD}> holds a Perl
handler (e.g. IO::Async's C<watch_process>): the supervisor must be the one
reaping its workers.

=cut

sub run {
    my ($self) = @_;
    if (ref $SIG{CHLD}) {
        DaemonKit::_throw('dk_supervisor_run', -Errno::EBUSY(),
            'supervisor: run: $SIG{CHLD} has a Perl handler (IO::Async watch_process?); '
            . 'the supervisor reaps its own workers - remove it first');
    }
    DaemonKit::_flush_std();
    my $r = DaemonKit::FFI::dk_supervisor_run($self->_h);
    DaemonKit::_throw('dk_supervisor_run', $r, 'supervisor: run: no worker entry or exec program set') if $r == -Errno::EINVAL();
    DaemonKit::_fail_op('dk_supervisor_run', $r, 'run') if $r < 0;
    return $r;
}

=head2 free

    $sv->free;     # also done by DESTROY

Frees the C supervisor (after L</run> returned).

=cut

sub free {
    my ($self) = @_;
    my $h = delete $self->{h};
    DaemonKit::FFI::dk_supervisor_free($h) if defined $h;
    return 1;
}

sub DESTROY {
    my ($self) = @_;
    return if ${^GLOBAL_PHASE} eq 'DESTRUCT' && !defined $self->{h};
    local ($., $@, $!, $^E, $?);
    $self->free;
}

1;
