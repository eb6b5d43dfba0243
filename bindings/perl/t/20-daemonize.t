use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use DKTest;
use Test::More;
use DaemonKit qw(:all !fail);
use DaemonKit::PidFile;

my $dir = tempdir_clean();

sub launch {
    my ($name, $code, %o) = @_;
    my ($out, $err) = ("$dir/$name.out", "$dir/$name.err");
    my $pid = spawn_perl(args => ['-e', $code, $dir], stdout => $out, stderr => $err, env => $o{env});
    my $st = wait_exit($pid, $o{timeout} // 10);
    return ($st, read_file($out) // '', read_file($err) // '', $pid);
}

sub proc_field {
    my ($pid, $field) = @_;
    my $s = read_file("/proc/$pid/status") // return;
    return $s =~ /^$field:\s*(.*?)\s*$/m ? $1 : undef;
}

sub stat_fields {
    my ($pid) = @_;
    my $s = read_file("/proc/$pid/stat") // return;
    $s =~ s/^.*\)\s+//s;
    my @f = split ' ', $s;
    return { state => $f[0], ppid => $f[1], pgrp => $f[2], session => $f[3], tty => $f[4] };
}

# --- success: the launcher exits 0 only once the daemon is ready ----------
my ($st, $out, $err, $launcher) = launch('ok', <<'PERL');
    use DaemonKit qw(:all);
    use DaemonKit::PidFile;
    my $dir = shift;
    my $fd = listen_tcp('127.0.0.1:0');
    my $pf = DaemonKit::PidFile->open("$dir/ok.pid");
    print "launcher $$ port ", socket_port($fd);        # no newline: must be flushed, once
    my $role = daemonize(keep => [$fd], umask => 027);
    $pf->write;
    open my $fh, '>', "$dir/ok.role" or die; print $fh "$role ", socket_port($fd), "\n"; close $fh;
    sleep 1;                                           # the launcher waits for ready()
    signal_open(qw(TERM));
    ready();
    while (1) { last if signal_wait(10) == 15 }
    $pf->remove;
    exit 0;
PERL
is($st, 0, 'launcher exited 0') or diag("stderr: $err");
my ($daemon) = (read_file("$dir/ok.pid") // '') =~ /^(\d+)\n\z/;
ok($daemon, 'the pid file holds the daemon\'s pid the moment the launcher exits');
track_pid($daemon);
isnt($daemon, $launcher, '... not the launcher\'s');
like($out, qr/^launcher $launcher port \d+\z/, 'Perl output buffered before daemonize appears exactly once');
ok(alive($daemon), "daemon $daemon is running");
my $s = stat_fields($daemon);
is($s->{tty}, 0, 'no controlling terminal');
isnt($s->{session}, $daemon, 'not a session leader (forked twice)');
is(readlink("/proc/$daemon/cwd"), '/', 'cwd is /');
is(proc_field($daemon, 'Umask'), '0027', 'umask set');
is(readlink("/proc/$daemon/fd/0"), '/dev/null', 'stdin is /dev/null');
is((read_file("$dir/ok.role") // '') =~ /^(\d+)/ ? $1 : undef, DK_ROLE_DAEMON, 'daemonize returned DK_ROLE_DAEMON');
my ($port) = (read_file("$dir/ok.role") // '') =~ / (\d+)$/;
ok(IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port"), 'the kept listener is still open in the daemon');
is(DaemonKit::PidFile->kill("$dir/ok.pid", 'TERM'), $daemon, 'TERM through the pid file');
ok(wait_until(sub { !alive($daemon) }, 5), 'daemon stopped');
ok(wait_until(sub { !-e "$dir/ok.pid" }, 2), 'pid file removed');

# --- failure after the fork: the launcher prints the message, exits with the code
($st, $out, $err) = launch('fail', <<'PERL');
    use DaemonKit qw(:all);
    daemonize();
    DaemonKit::fail(3, "config broken: no such file /etc/x.conf");
    exit 3;
PERL
is($st >> 8, 3, 'launcher exits with the daemon\'s code');
is($err, "config broken: no such file /etc/x.conf\n", 'launcher prints the daemon\'s message on stderr');

# --- a die before ready is not a silent success
($st, $out, $err) = launch('die', <<'PERL');
    use DaemonKit qw(:all);
    daemonize();
    die "boom\n";
PERL
isnt($st >> 8, 0, 'a daemon dying before ready: launcher exits non-zero (' . ($st >> 8) . ')');
like($err, qr/^daemonkit: daemon \(pid \d+\) exited with status \d+ before it was ready$/m, 'message names the daemon and its status');

# --- readiness timeout
($st, $out, $err) = launch('slow', <<'PERL');
    use DaemonKit qw(:all);
    my $dir = shift;
    daemonize(timeout => 0.3);
    open my $fh, '>', "$dir/slow.pid" or die; print $fh "$$\n"; close $fh;
    sleep 20;
PERL
my ($slow) = (read_file("$dir/slow.pid") // '') =~ /(\d+)/;
track_pid($slow);
is($st >> 8, 1, 'not ready in time: launcher exits 1');
like($err, qr/daemon \(pid \d+\) not ready after 300 ms; killed/, 'timeout message');
ok(wait_until(sub { !alive($slow) }, 3), 'the late daemon was killed') if $slow;

# --- foreground: same process, role FOREGROUND
($st, $out, $err, my $fg) = launch('fg', <<'PERL');
    use DaemonKit qw(:all);
    my $role = daemonize(foreground => 1, no_chdir => 1);
    print "$$ $role ", Cwd::getcwd();
PERL
is($st, 0, 'foreground: exit 0');
is($out, "$fg " . DK_ROLE_FOREGROUND . ' ' . Cwd::getcwd(), 'foreground: same pid, DK_ROLE_FOREGROUND, no_chdir honoured');

# --- argument errors come back before the fork
($st, $out, $err) = launch('badkeep', <<'PERL');
    use DaemonKit qw(:all);
    eval { daemonize(keep => [987]) }; print $@->message, '|', $@->errno;
PERL
is($out, 'daemonize: Bad file descriptor|' . Errno::EBADF(), 'a closed kept fd: EBADF in the launcher');

done_testing;
