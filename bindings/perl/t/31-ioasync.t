use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use DKTest;
use Test::More;
use Errno qw(EBUSY);
use DaemonKit qw(:all !fail);
use DaemonKit::IOAsync;

my $dir = tempdir_clean();

# --- the signal fd under IO::Async (in a child: dispositions are per process) ----
my ($out) = in_child(sub {
    my @r;
    my $loop = DaemonKit::IOAsync->new_loop;
    my $sig = DaemonKit::IOAsync->watch_signals($loop,
        USR1 => sub { my ($self, $name, $num) = @_; push @r, "cb $name $num" },
        TERM => sub { push @r, 'TERM'; $loop->stop },
    );
    $sig->configure(on_signal => sub { push @r, "other $_[1]" });
    push @r, 'names ' . join(',', $sig->signal_names);
    signal_open('USR2');                       # registered elsewhere: goes to on_signal
    $loop->watch_time(after => 0.05, code => sub { kill 'USR1', $$; kill 'USR1', $$; kill 'USR2', $$ });
    $loop->watch_time(after => 0.3, code => sub { kill 'TERM', $$ });
    $loop->watch_time(after => 5, code => sub { push @r, 'TIMEOUT'; $loop->stop });
    $loop->run;
    # add a signal while in the loop
    $sig->configure(signals => { HUP => sub { push @r, 'HUP'; $loop->stop } });
    $loop->watch_time(after => 0.05, code => sub { kill 'HUP', $$ });
    $loop->run;
    # removed: no dispatch; added again: dispatch resumes (nothing lost meanwhile)
    $loop->remove($sig);
    kill 'USR1', $$;
    $loop->loop_once(0.1);
    push @r, 'removed-quiet';
    $loop->add($sig);
    $loop->watch_time(after => 0.05, code => sub { $loop->stop });
    $loop->run;
    # two notifiers share the library's pipe: each signal reaches the one that asked
    my $other = DaemonKit::IOAsync->watch_signals($loop, USR2 => sub { push @r, 'second notifier USR2'; $loop->stop });
    $loop->watch_time(after => 0.05, code => sub { kill 'USR2', $$ });
    $loop->run;
    $loop->remove($other);
    # one owner per signal
    $loop->watch_signal(INT => sub { });
    my $ok = eval { DaemonKit::IOAsync->watch_signals($loop, INT => sub { }); 1 };
    push @r, 'conflict ' . ($ok ? 'accepted' : $@->errno . ' ' . ($@->message =~ /SIGINT already has a Perl handler/ ? 'message-ok' : $@->message));
    return join "\n", @r;
});
my @r = split /\n/, $out;
is_deeply(\@r, [
    'names TERM,USR1',
    'cb USR1 10', 'other USR2', 'TERM',
    'HUP',
    'removed-quiet', 'cb USR1 10',
    'second notifier USR2',
    'conflict ' . EBUSY . ' message-ok',
], 'signals dispatched from the loop: per-signal callbacks, on_signal, added later, remove/add, conflicts refused')
    or diag(explain \@r);

# --- FIXFORK: every worker gets its own loop, not the master's ----------------------
my $script = "$dir/master.pl";
open my $fh, '>', $script or die;
print $fh <<'PERL';
use strict; use warnings;
use DaemonKit qw(:all);
use DaemonKit::Supervisor;
use DaemonKit::IOAsync;
use IO::Async::Loop;
use IO::Async::Listener;
use Scalar::Util qw(refaddr);
my ($dir) = @ARGV;
sub note { open my $fh, '>>', "$dir/notes" or die; print $fh "@_\n"; close $fh }
my $lfd = listen_tcp('127.0.0.1:0');
# The master has an IO::Async loop of its own, with a timer in it.
my $parent = IO::Async::Loop->new;
my $parent_poll = refaddr($parent->{poll} // $parent);
$parent->watch_time(after => 0.2, code => sub { note("parent timer fired in $$") });
note("master $$ port " . socket_port($lfd) . ' parent_loop ' . refaddr($parent));

sub sigpipe_ignored {
    open my $fh, '<', '/proc/self/status' or die;
    while (<$fh>) { return (hex($1) >> 12) & 1 if /^SigIgn:\s*([0-9a-f]+)/ }
    return -1;
}
note("master sigpipe_ignored=" . sigpipe_ignored());

sub body {
    my ($loop, $index, $how) = @_;
    my $again = IO::Async::Loop->new;
    note(join ' ', "worker $$ index $index via $how",
        'loop_is_parent=' . (refaddr($loop) == refaddr($parent) ? 1 : 0),
        'new_returns_own=' . (refaddr($again) == refaddr($loop) ? 1 : 0),
        'poll_shared=' . (refaddr($loop->{poll} // $loop) == $parent_poll ? 1 : 0),
        'sigpipe_ignored=' . sigpipe_ignored());
    my $sock = DaemonKit::IOAsync->listen_socket($lfd);
    my $listener = IO::Async::Listener->new(
        handle    => $sock,
        on_stream => sub {
            my ($l, $stream) = @_;
            $stream->configure(on_read => sub {
                my ($s, $buf) = @_;
                return 0 unless $$buf =~ /\r\n\r\n/;
                $s->write("HTTP/1.0 200 OK\r\n\r\nioasync worker $$ index $index\n");
                $s->close_when_empty;
                $$buf = '';
                return 0;
            });
            $l->loop->add($stream);
        },
    );
    $loop->add($listener);
    my $ticks = 0;
    $loop->watch_time(after => 0.3, code => sub { note("worker $$ own timer fired") });
    DaemonKit::IOAsync->watch_signals($loop, TERM => sub { $loop->stop });
    ready();
    $loop->run;
    note("worker $$ stopped");
    return 0;
}

my $sv = DaemonKit::Supervisor->new(
    workers   => 2,
    listeners => [$lfd],
    worker    => sub {
        my ($index) = @_;
        # index 0: the DaemonKit::IOAsync->worker wrapper; index 1: plain IO::Async::Loop->new
        return DaemonKit::IOAsync->worker(sub { body(@_, 'wrapper') })->($index) if $index == 0;
        return body(IO::Async::Loop->new, $index, 'plain-new');
    },
    on_event  => sub { note("event $_[3] $_[1] $_[2]") },
);
$sv->run;
note("master done");
PERL
close $fh;

my $master = spawn_perl(args => [$script, $dir], stderr => "$dir/master.err");
sub notes { read_file("$dir/notes") // '' }
my ($port) = wait_until(sub { notes() =~ /^master $master port (\d+)/m ? $1 : undef }, 10);
ok($port, "master $master on port $port");
ok(wait_until(sub { notes() =~ /^event ready $master 2$/m }, 10), 'both IO::Async workers ready') or diag(read_file("$dir/master.err"));
my @workers = notes() =~ /^event spawned (\d+)/mg;
track_pid(@workers);
for my $how ('wrapper', 'plain-new') {
    my ($line) = notes() =~ /^(worker \d+ index \d via $how .*)$/m;
    ok($line, "worker started ($how)");
    like($line // '', qr/loop_is_parent=0/, "$how: the worker's loop is not the master's");
    like($line // '', qr/new_returns_own=1/, "$how: IO::Async::Loop->new in the worker returns the worker's loop");
    like($line // '', qr/poll_shared=0/, "$how: no poller shared with the master");
}
like(notes(), qr/^master sigpipe_ignored=1$/m, 'the master ignores SIGPIPE (IO::Async did when loaded)');
like(notes(), qr/^worker \d+ index \d via wrapper .*sigpipe_ignored=1/m, 'DaemonKit::IOAsync->worker ignores SIGPIPE again in the worker');
like(notes(), qr/^worker \d+ index \d via plain-new .*sigpipe_ignored=0/m, 'a plain worker starts with SIGPIPE at its default (documented)');
my %by;
for (1 .. 12) {
    my (undef, $body) = http_get($port, '/');
    $by{$1}++ if ($body // '') =~ /^ioasync worker (\d+) index \d$/;
}
ok(%by, 'IO::Async workers answer HTTP: ' . join(', ', map { "$_ x$by{$_}" } sort keys %by));
ok(wait_until(sub { (() = notes() =~ /own timer fired/g) == 2 }, 3), 'each worker\'s own timer fired');
unlike(notes(), qr/parent timer fired/, 'the master\'s timer never fired (in the master it has no running loop, in a worker it is not there)');
kill 'TERM', $master;
is(wait_exit($master, 10), 0, 'master exits 0 on TERM');
is((() = notes() =~ /^worker \d+ stopped$/mg), 2, 'both workers stopped their loops on TERM (graceful)');

done_testing;
