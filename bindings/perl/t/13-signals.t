use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use DKTest;
use Test::More;
use Errno qw(EINVAL EBADF EPIPE);
use POSIX ();
use Time::HiRes ();
use DaemonKit qw(:all !fail);

is(signal_number('TERM'), POSIX::SIGTERM(), "signal_number('TERM')");
is(signal_number('SIGHUP'), POSIX::SIGHUP(), "signal_number('SIGHUP')");
is(signal_number(10), 10, 'signal_number(10)');
is(signal_name(POSIX::SIGUSR2()), 'USR2', 'signal_name');

# Everything in a child: dispositions are process-wide.
my ($out) = in_child(sub {
    my @r;
    eval { signal_wait(0) };
    push @r, 'wait-before-open=' . ($@ ? $@->message : 'no error');
    my $fd = signal_open(qw(USR1 USR2 HUP));
    push @r, "fd-ok=" . ($fd > 2 ? 1 : 0);
    push @r, 'same-fd=' . (signal_open('TERM') == $fd ? 1 : 0);
    my ($flags) = (read_file("/proc/self/fdinfo/$fd") // '') =~ /^flags:\s*([0-7]+)/m;
    push @r, 'cloexec=' . ((oct($flags // 0) & 02000000) ? 1 : 0) . ((oct($flags // 0) & 04000) ? 1 : 0);
    push @r, 'none=' . signal_next();
    kill 'USR2', $$; kill 'USR1', $$; kill 'USR1', $$; kill 'USR1', $$;
    my @got;
    while (my $s = signal_next()) { push @got, signal_name($s) }
    push @r, "flood=@got";
    push @r, 'timeout=' . signal_wait(0.05);
    my $t0 = Time::HiRes::time();
    my $pid = fork // die;
    if (!$pid) { Time::HiRes::sleep(0.2); kill 'HUP', getppid(); POSIX::_exit(0) }
    my $s = signal_wait(5);
    waitpid($pid, 0);
    push @r, 'waited=' . signal_name($s) . sprintf('(%.1fs)', Time::HiRes::time() - $t0);
    # readiness: the fd becomes readable
    kill 'TERM', $$;
    my $rin = ''; vec($rin, $fd, 1) = 1;
    push @r, 'readable=' . select(my $rout = $rin, undef, undef, 2);
    push @r, 'then=' . signal_name(signal_next());
    push @r, 'drained=' . select($rout = $rin, undef, undef, 0);
    eval { signal_open('KILL') };
    push @r, 'kill=' . $@->message . '/' . $@->errno;
    signal_close();
    push @r, 'closed-fd=' . (-e "/proc/self/fd/$fd" ? 'open' : 'closed');
    local $SIG{USR1} = 'IGNORE';
    push @r, 'restored=' . (kill('USR1', $$) ? 'alive' : 'dead');
    return join "\n", @r;
});
my %r = map { split /=/, $_, 2 } split /\n/, $out;
is($r{'wait-before-open'}, 'signal_wait: no signal is registered (signal_open)', 'signal_wait before signal_open croaks');
is($r{'fd-ok'}, 1, 'signal_open returns an fd above 2');
is($r{'same-fd'}, 1, 'signal_open again adds signals, same fd');
is($r{cloexec}, '11', 'the fd is close-on-exec and non-blocking');
is($r{none}, 0, 'signal_next: 0 when nothing is pending');
is($r{flood}, 'USR1 USR2', 'a flood is delivered once per kind, lowest number first');
is($r{timeout}, 0, 'signal_wait times out with 0');
like($r{waited}, qr/^HUP\((?:0\.[1-9]|1\.\d)s\)$/, "signal_wait returns the signal ($r{waited})");
is($r{readable}, 1, 'the fd becomes readable on a signal');
is($r{then}, 'TERM', '... signal_next returns it');
is($r{drained}, 0, '... and the fd is drained');
is($r{kill}, 'signal_open(KILL): Invalid argument/' . EINVAL, 'uncatchable signal: EINVAL');
is($r{'closed-fd'}, 'closed', 'signal_close closes the pipe');
is($r{restored}, 'alive', 'process alive after signal_close (dispositions restored)');

# reset_child and ignore_sigpipe, read back from /proc/self/status.
sub sigmask { my ($field) = @_; open my $fh, '<', '/proc/self/status' or die; while (<$fh>) { return hex($1) if /^$field:\s*([0-9a-f]+)/ } 0 }
($out) = in_child(sub {
    my @r;
    signal_ignore_sigpipe();
    push @r, 'pipe-ignored=' . ((sigmask('SigIgn') >> (POSIX::SIGPIPE() - 1)) & 1);
    pipe(my $rd, my $wr) or die; close $rd;
    my $n = syswrite($wr, 'x');
    push @r, 'write=' . (defined $n ? $n : $! + 0);
    signal_open('USR1');
    push @r, 'caught=' . ((sigmask('SigCgt') >> (POSIX::SIGUSR1() - 1)) & 1);
    POSIX::sigprocmask(POSIX::SIG_BLOCK(), POSIX::SigSet->new(POSIX::SIGUSR2()));
    signal_reset_child();
    push @r, 'after-reset=' . ((sigmask('SigCgt') >> (POSIX::SIGUSR1() - 1)) & 1)
           . ((sigmask('SigIgn') >> (POSIX::SIGPIPE() - 1)) & 1) . (sigmask('SigBlk') ? 1 : 0);
    return join "\n", @r;
});
%r = map { split /=/, $_, 2 } split /\n/, $out;
is($r{'pipe-ignored'}, 1, 'signal_ignore_sigpipe: SIGPIPE ignored');
is($r{write}, EPIPE, '... writing to a closed pipe gives EPIPE');
is($r{caught}, 1, 'signal_open installs a handler');
is($r{'after-reset'}, '000', 'signal_reset_child: no handler, nothing ignored, empty mask');

done_testing;
