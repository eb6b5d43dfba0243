use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use DKTest;
use Test::More;
use Errno qw(EINVAL EBUSY EBADF);
use DaemonKit qw(:all !fail);
use DaemonKit::PidFile;
use DaemonKit::Supervisor;

my $dir = tempdir_clean();

# --- configuration errors, in this process (nothing runs) -------------------
{
    my $sv = DaemonKit::Supervisor->new;
    isa_ok($sv, 'DaemonKit::Supervisor');
    eval { $sv->set_workers(0) };
    like($@, qr/^supervisor: workers must be 1\.\.256, not '0'/, 'set_workers(0) refused');
    eval { $sv->set_workers(257) };
    is($@ && $@->errno, EINVAL, 'set_workers(257): EINVAL');
    ok($sv->set_workers(3), 'set_workers(3)');
    ok($sv->set_graceful_timeout(1.5), 'set_graceful_timeout');
    ok($sv->set_ready_timeout(0.5), 'set_ready_timeout');
    eval { $sv->set_worker('not code') };
    like($@, qr/worker must be a code reference/, 'set_worker needs code');
    eval { $sv->add_listener(98765) };
    is($@ && $@->message, 'supervisor: add listener fd 98765: Bad file descriptor', 'add_listener of a closed fd');
    eval { $sv->set_pidfile('x') };
    like($@, qr/pidfile must be a DaemonKit::PidFile/, 'set_pidfile needs a PidFile');
    eval { $sv->set_upgrade([]) };
    like($@, qr/upgrade needs an argv/, 'set_upgrade needs an argv');
    ok($sv->set_listen_names([qw(http admin)]), 'set_listen_names');
    ok($sv->set_listen_names(undef), 'set_listen_names(undef) clears');
    ok($sv->set_event(sub {}), 'set_event');
    ok($sv->set_event(undef), 'set_event(undef): back to the default log');
    ok($sv->set_post_fork(undef), 'set_post_fork(undef)');
    ok($sv->set_stop_signal('QUIT'), 'set_stop_signal(QUIT)');
    eval { $sv->set_stop_signal('KILL') };
    is($@ && $@->message, 'supervisor: stop signal KILL: Invalid argument', 'a KILL stop signal refused');
    ok($sv->set_restart(max_backoff => 0.5, give_up => [3, 60]), 'set_restart');
    eval { $sv->set_restart(give_up => [65, 60]) };
    is($@ && $@->errno, EINVAL, 'give up after 65 crashes: EINVAL');
    eval { $sv->set_restart(give_up => 3) };
    like($@, qr/give_up must be \[N, SECONDS\]/, 'give_up needs [N, SECONDS]');
    ok($sv->set_flags(DK_SUPERVISOR_REAP_ALL | DK_SUPERVISOR_SIGNAL_GROUP), 'set_flags');
    eval { $sv->set_flags(64) };
    is($@ && $@->errno, EINVAL, 'unknown flags: EINVAL');
    ok($sv->set_flags(0), 'set_flags(0)');
    ok($sv->set_stdio(sub { -1 }), 'set_stdio');
    ok($sv->set_stdio(undef), 'set_stdio(undef)');
    is($sv->exit_status, 0, 'exit_status before run: 0');
    eval { $sv->run };
    is($@ && $@->message, 'supervisor: run: no worker entry or exec program set', 'run without a worker: EINVAL');
    is($@ && $@->errno, EINVAL, '... EINVAL');
    $sv->set_worker(sub { 0 });
    {
        local $SIG{CHLD} = sub { };
        eval { $sv->run };
        like($@, qr/^supervisor: run: \$SIG\{CHLD\} has a Perl handler/, 'run refuses while %SIG owns CHLD (IO::Async watch_process)');
        is($@ && $@->errno, EBUSY, '... EBUSY');
    }
    $sv->free;
    eval { $sv->set_workers(1) };
    like($@, qr/already freed/, 'use after free croaks');
    is(DaemonKit::Supervisor::event_name(DK_EVENT_EXITED), 'exited', 'event_name');
    is(DaemonKit::Supervisor::describe_event(DK_EVENT_EXITED, 42, 3 << 8), 'worker 42 exited with status 3', 'describe_event');
}

# --- a real master with Perl workers --------------------------------------------
my $master_script = "$dir/master.pl";
open my $fh, '>', $master_script or die;
print $fh <<'PERL';
use strict; use warnings;
use DaemonKit qw(:all);
use DaemonKit::PidFile;
use DaemonKit::Supervisor;
use IO::Socket::INET;
use POSIX ();
my ($dir, $mode, $workers) = @ARGV;
$| = 1;
sub note { open my $fh, '>>', "$dir/$mode.notes" or die; print $fh "@_\n"; close $fh }
END { note("END block ran in $$") }
my @inherited = listen_fds(unset => 1);
my $lfd = @inherited ? $inherited[0] : listen_tcp('127.0.0.1:0');
my $pf = DaemonKit::PidFile->open("$dir/$mode.pid");
daemonize(foreground => 1, keep => [$lfd]);
$pf->write;
note("master $$ port " . socket_port($lfd)) unless @inherited;
note("new master $$") if @inherited;

sub serve {
    my ($index) = @_;
    my $sig = signal_open(qw(TERM USR1));
    my $sock = IO::Socket::INET->new_from_fd(POSIX::dup($lfd), 'r') or die "fd: $!";
    $sock->blocking(0);
    ready();
    while (1) {
        my $rin = '';
        vec($rin, $sig, 1) = 1;
        vec($rin, fileno($sock), 1) = 1;
        my $n = select(my $rout = $rin, undef, undef, undef);
        next if $n < 0;
        if (vec($rout, $sig, 1)) {
            while (my $s = signal_next()) { return 0 if $s == 15 }
        }
        if (vec($rout, fileno($sock), 1)) {
            my $c = $sock->accept or next;
            $c->blocking(1);
            my $line = <$c>;
            print $c "HTTP/1.0 200 OK\r\nConnection: close\r\n\r\nworker $$ index $index\n";
            close $c;
            die "late boom in $$\n" if $mode eq 'die-late';
            exit 5 if $mode eq 'exit';
        }
    }
}

my %worker = (
    serve      => \&serve,
    'die-late' => \&serve,
    exit       => \&serve,
    die        => sub { die "boom in worker $_[0]\n" },
    giveup     => sub { die "boom in worker $_[0]\n" },
    stubborn   => sub { my $s = signal_open('TERM'); ready(); sleep 1 while 1 },
);
my $sv = DaemonKit::Supervisor->new(
    workers          => $workers // 2,
    graceful_timeout => ($mode eq 'stubborn' ? 0.5 : 5),
    ready_timeout    => 3,
    listeners        => [$lfd],
    pidfile          => $pf,
    upgrade          => [ DaemonKit::self_argv() ],
    upgrade_timeout  => 10,
    ($mode eq 'giveup' ? (give_up => [3, 30], max_backoff => 0.1) : ()),
    ($mode eq 'hookdie' ? (post_fork => sub { die "hook failed\n" }, worker => sub { note("worker body ran"); 0 })
     : $mode eq 'exec'  ? (exec => [$^X, "-I$INC[0]", "$dir/exec-worker.pl", $dir], listen_names => 'http')
     :                    (worker => $worker{$mode})),
    on_event         => sub {
        my ($kind, $pid, $value, $name) = @_;
        note("event $name $pid $value");
    },
);
my $r = $sv->run;
note("run returned $r in $$");
$pf->close;
POSIX::_exit(0);
PERL
close $fh;

open $fh, '>', "$dir/exec-worker.pl" or die;
print $fh <<'PERL';
use strict; use warnings;
use DaemonKit qw(:all);
use IO::Socket::INET;
use POSIX ();
my ($dir) = @ARGV;
my @fds = listen_fds(unset => 1, names => \my @names);
my $role = daemonize(foreground => 1, keep => \@fds);
open my $fh, '>>', "$dir/exec.notes" or die;
print $fh "exec worker $$ fds=@fds names=@names role=$role\n";
close $fh;
my $sig = signal_open('TERM');
my $sock = IO::Socket::INET->new_from_fd(POSIX::dup($fds[0]), 'r') or die;
ready();
while (1) {
    my $rin = '';
    vec($rin, $sig, 1) = 1;
    vec($rin, fileno($sock), 1) = 1;
    next if select(my $rout = $rin, undef, undef, undef) < 0;
    exit 0 if vec($rout, $sig, 1) && signal_next() == 15;
    next unless vec($rout, fileno($sock), 1);
    my $c = $sock->accept or next;
    my $line = <$c>;
    print $c "HTTP/1.0 200 OK\r\n\r\nexec worker $$\n";
    close $c;
}
PERL
close $fh;

sub notes { my ($mode) = @_; read_file("$dir/$mode.notes") // '' }
sub start_master {
    my ($mode, $workers) = @_;
    my $pid = spawn_perl(args => [$master_script, $dir, $mode, $workers // 2],
                         stderr => "$dir/$mode.err", stdout => "$dir/$mode.out");
    my ($port) = wait_until(sub { notes($mode) =~ /^master $pid port (\d+)$/m ? $1 : undef }, 10);
    return ($pid, $port);
}
sub workers_of {
    my ($mode, $master) = @_;
    my %live;
    for (split /\n/, notes($mode)) {
        $live{$1} = 1 if /^event spawned (\d+)/;
        delete $live{$1} if /^event exited (\d+)/;
    }
    my @w = sort { $a <=> $b } keys %live;
    return wantarray ? @w : scalar @w;
}
sub stop_master {
    my ($pid) = @_;
    kill 'TERM', $pid;
    return wait_exit($pid, 10);
}

# serve: N workers, ready, requests spread, TERM: graceful stop, pid file unlinked
{
    my ($master, $port) = start_master('serve', 2);
    ok($port, "master $master listening on $port");
    ok(wait_until(sub { notes('serve') =~ /^event ready $master 2$/m }, 10), 'master ready once both workers reported ready');
    my @w = workers_of('serve', $master);
    is(scalar @w, 2, "two workers: @w");
    track_pid(@w);
    my %seen;
    for (1 .. 20) {
        my ($st, $body) = http_get($port, '/');
        $seen{$1} = $2 if ($body // '') =~ /^worker (\d+) index (\d+)$/;
    }
    ok(keys(%seen) >= 1, 'workers answer: ' . join(', ', map { "$_ (index $seen{$_})" } sort keys %seen));
    ok(!grep({ my $p = $_; !grep { $_ == $p } @w } keys %seen), 'only our workers answer');
    is(read_file("$dir/serve.pid"), "$master\n", 'pid file holds the master');

    # TTIN / TTOU
    kill 'TTIN', $master;
    ok(wait_until(sub { workers_of('serve') == 3 }, 5), 'TTIN: three workers');
    kill 'TTOU', $master;
    ok(wait_until(sub { workers_of('serve') == 2 }, 5), 'TTOU: two again');
    track_pid(workers_of('serve'));

    # a worker killed: respawned
    my ($victim) = workers_of('serve');
    sleep 1;
    kill 'KILL', $victim;
    ok(wait_until(sub { notes('serve') =~ /^event exited $victim 9$/m && workers_of('serve') == 2 }, 5), "worker $victim killed -9 is replaced");
    track_pid(workers_of('serve'));

    # HUP: rolling restart
    my @before = workers_of('serve');
    kill 'HUP', $master;
    ok(wait_until(sub { notes('serve') =~ /^event reloaded $master 1$/m }, 10), 'HUP: rolling restart done');
    my @after = workers_of('serve');
    is(scalar(grep { my $b = $_; grep { $_ == $b } @after } @before), 0, "every worker replaced (@before -> @after)");
    track_pid(@after);

    my $st = stop_master($master);
    is($st, 0, 'TERM: master exits 0');
    like(notes('serve'), qr/^event stopping $master 5000$/m, 'stopping event with the graceful timeout');
    like(notes('serve'), qr/^run returned ${\ DK_SUPERVISOR_STOPPED} in $master$/m, 'run returned DK_SUPERVISOR_STOPPED');
    ok(!-e "$dir/serve.pid", 'pid file unlinked');
    ok(!grep({ alive($_) } @after), 'workers gone');
    unlike(notes('serve'), qr/^END block ran in (?!$master)/m, 'no worker ran the master\'s END blocks');
}

# a worker that dies: reported as a failed worker, its message in the master's log
{
    my ($master, $port) = start_master('die', 1);
    ok(wait_until(sub { notes('die') =~ /^event worker_failed (\d+) 1$/m }, 10), 'a worker dying at start: worker_failed event');
    ok(wait_until(sub { notes('die') =~ /^event exited \d+ 256$/m }, 5), '... exited with status 1, not 0');
    like(notes('die'), qr/^event respawn_delayed /m, '... counted as a crash (respawn throttled)');
    my $err = read_file("$dir/die.err") // '';
    like($err, qr/^worker \d+ \(index 0\) died: boom in worker 0$/m, 'its message is in the master\'s log');
    track_pid(workers_of('die'));
    is(stop_master($master), 0, 'master stops');
}

# a worker that dies after it was ready
{
    my ($master, $port) = start_master('die-late', 1);
    ok(wait_until(sub { notes('die-late') =~ /^event worker_ready /m }, 10), 'worker ready');
    my ($w) = workers_of('die-late');
    track_pid($w);
    http_get($port, '/');
    ok(wait_until(sub { notes('die-late') =~ /^event exited $w 256$/m }, 5), 'dies on a request: exit status 1');
    like(read_file("$dir/die-late.err") // '', qr/^worker $w \(index 0\) died: late boom in $w$/m, 'message in the master\'s log');
    ok(wait_until(sub { workers_of('die-late') == 1 }, 5), 'replaced');
    track_pid(workers_of('die-late'));
    is(stop_master($master), 0, 'master stops');
}

# exit() in a worker: its status, and no END blocks of the master
{
    my ($master, $port) = start_master('exit', 1);
    ok(wait_until(sub { notes('exit') =~ /^event worker_ready /m }, 10), 'worker ready');
    my ($w) = workers_of('exit');
    track_pid($w);
    http_get($port, '/');
    ok(wait_until(sub { notes('exit') =~ /^event exited $w 1280$/m }, 5), 'exit(5) in a worker: status 5');
    unlike(notes('exit'), qr/^END block ran in $w$/m, 'the master\'s END block did not run in the worker');
    track_pid(workers_of('exit'));
    is(stop_master($master), 0, 'master stops');
}

# a post_fork hook that dies: the worker body does not run
{
    my ($master) = start_master('hookdie', 1);
    ok(wait_until(sub { notes('hookdie') =~ /^event exited \d+ 256$/m }, 10), 'post_fork die: worker exits 1');
    unlike(notes('hookdie'), qr/worker body ran/, 'the worker body did not run');
    like(read_file("$dir/hookdie.err") // '', qr/^worker \d+ \(index 0\) post_fork hook died: hook failed$/m, 'message in the log');
    track_pid(workers_of('hookdie'));
    is(stop_master($master), 0, 'master stops');
}

# graceful timeout: a worker ignoring TERM is killed
{
    my ($master) = start_master('stubborn', 1);
    ok(wait_until(sub { notes('stubborn') =~ /^event ready /m }, 10), 'ready');
    my ($w) = workers_of('stubborn');
    track_pid($w);
    is(stop_master($master), 0, 'master exits 0');
    like(notes('stubborn'), qr/^event killed $w 0$/m, 'worker killed after the graceful timeout');
}

# set_exec: workers exec a program that takes the listener from LISTEN_FDS
{
    my ($master, $port) = start_master('exec', 2);
    ok(wait_until(sub { notes('exec') =~ /^event ready $master 2$/m }, 10), 'exec workers reported ready through DAEMONKIT_READY_FD');
    my @w = workers_of('exec');
    track_pid(@w);
    like(notes('exec'), qr/^exec worker $w[0] fds=3 names=http role=\d$/m, 'exec worker: listener as fd 3, LISTEN_FDNAMES=http');
    my ($st, $body) = http_get($port, '/');
    like($body // '', qr/^exec worker \d+$/, 'exec workers serve');
    is(stop_master($master), 0, 'master stops');
    ok(!grep({ alive($_) } @w), 'exec workers gone');
}

# the restart policy: three crashes in 30 s, and the master gives up
{
    unlink "$dir/giveup.notes";
    my ($master, $port) = start_master('giveup', 1);
    my $t0 = time;
    is(wait_exit($master, 15), 0, 'a master that gave up returns from run');
    like(notes('giveup'), qr/^run returned ${\ DK_SUPERVISOR_GAVE_UP} in $master$/m, 'run returned DK_SUPERVISOR_GAVE_UP');
    like(notes('giveup'), qr/^event gave_up \d+ 3$/m, 'a gave_up event with the crash count');
    my @delays = notes('giveup') =~ /^event respawn_delayed \d+ (\d+)$/mg;
    ok(@delays && !grep({ $_ > 100 } @delays), "backoff capped at 100 ms (@delays)");
    ok(time - $t0 < 10, 'gave up quickly');
}

# USR2: upgrade to a new master generation
{
    unlink "$dir/serve.notes";
    my ($master, $port) = start_master('serve', 1);
    ok(wait_until(sub { notes('serve') =~ /^event ready $master 1$/m }, 10), 'ready');
    track_pid(workers_of('serve'));
    kill 'USR2', $master;
    my ($new) = wait_until(sub { notes('serve') =~ /^new master (\d+)$/m ? $1 : undef }, 10);
    ok($new, "new generation $new started");
    track_pid($new);
    is(wait_exit($master, 15), 0, 'old master exits 0');
    like(notes('serve'), qr/^run returned ${\ DK_SUPERVISOR_UPGRADED} in $master$/m, 'run returned DK_SUPERVISOR_UPGRADED');
    ok(wait_until(sub { notes('serve') =~ /^event ready $new 1$/m }, 10), 'new master ready');
    track_pid(workers_of('serve'));
    is(read_file("$dir/serve.pid"), "$new\n", 'pid file holds the new master');
    my ($st, $body) = http_get($port, '/');
    like($body // '', qr/^worker \d+ index 0$/, 'the new generation serves on the same port');
    is(DaemonKit::PidFile->kill("$dir/serve.pid", 'TERM'), $new, 'TERM the new master');
    ok(wait_until(sub { !alive($new) }, 10), 'new master stopped');
}

done_testing;
