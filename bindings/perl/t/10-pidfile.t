use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use DKTest;
use Test::More;
use Errno qw(EEXIST ELOOP EINVAL EPERM ESRCH ENOENT);
use POSIX ();
use DaemonKit qw(:all !fail);
use DaemonKit::PidFile;

my $dir = tempdir_clean();
my $path = "$dir/app.pid";

# open, write, fd, check
my $pf = DaemonKit::PidFile->open($path, mode => 0600);
isa_ok($pf, 'DaemonKit::PidFile');
is($pf->path, $path, 'absolute path');
ok($pf->is_open, 'is_open');
is((stat $path)[2] & 07777, 0600, 'mode 0600');
my $fd = $pf->fd;
ok($fd > 2, "locked fd $fd");
is(read_file($path), '', 'empty until written');
is_deeply([DaemonKit::PidFile->check($path)], ['running', 0], 'check: running, no pid written yet');
ok($pf->write, 'write');
is(read_file($path), "$$\n", 'holds our pid');
is_deeply([DaemonKit::PidFile->check($path)], ['running', $$], 'check: running with our pid');
is(scalar DaemonKit::PidFile->check($path), 'running', 'check in scalar context');

# the lock, seen from another process
my ($out) = in_child(sub {
    my $ok = eval { DaemonKit::PidFile->open($path); 1 };
    return $ok ? 'opened' : join('|', $@->message, $@->errno, $@->other_pid);
});
is($out, "pid file $path: daemon already running (PID: $$)|" . EEXIST . "|$$", 'second open: already running (PID: N), EEXIST');

# kill: only the lock holder, never a recycled pid
{
    local $SIG{USR1} = sub { };
    is(DaemonKit::PidFile->kill($path, 0), $$, 'kill 0 probes the holder');
}

# a forked child closes its copy; remove by a non-owner unlinks nothing
($out) = in_child(sub {
    my $r = $pf->remove;
    return join '|', $r, $! + 0, (-e $path ? 'present' : 'gone');
});
is($out, '0|' . EPERM . '|present', 'remove in a forked child: 0, EPERM, file kept');
ok(-e $path, 'file still there');
is(scalar DaemonKit::PidFile->check($path), 'running', 'lock still held by the parent');

# remove by the owner
ok($pf->remove, 'owner removes: 1');
ok(!-e $path, 'file unlinked');
ok(!$pf->is_open, 'handle closed');
eval { $pf->write };
like($@, qr/^pid file \Q$path\E: already closed/, 'write after remove croaks');
is_deeply([DaemonKit::PidFile->check($path)], ['missing', 0], 'check: missing');

# DESTROY releases the lock but leaves the file
{
    my $tmp = DaemonKit::PidFile->open($path);
    $tmp->write;
}
ok(-e $path, 'DESTROY leaves the file in place');
is_deeply([DaemonKit::PidFile->check($path)], ['stale', $$], 'check: stale (lock free) with the old pid');
eval { DaemonKit::PidFile->kill($path, 'TERM') };
like($@, qr/^pid file \Q$path\E: not running \(stale pid file; nobody signalled\)/, 'kill of a stale file signals nobody');
is($@->errno, ESRCH, '... ESRCH');

# a stale file left by a killed daemon is taken over
my $victim = fork // die;
if (!$victim) {
    my $p = DaemonKit::PidFile->open($path);
    $p->write;
    sleep 30;
    POSIX::_exit(0);
}
track_pid($victim);
ok(wait_until(sub { (DaemonKit::PidFile->check($path))[1] == $victim }), "child $victim holds the file");
is(DaemonKit::PidFile->kill($path, 'TERM'), $victim, 'kill TERM reaches the holder');
waitpid($victim, 0);
is($? & 127, POSIX::SIGTERM(), 'the holder died of SIGTERM');
my $pf2 = DaemonKit::PidFile->open($path);
$pf2->write;
is(read_file($path), "$$\n", 'stale file rewritten with the new pid');
$pf2->close;
ok(-e $path, 'close leaves the file');
$pf2->close;     # idempotent
unlink $path;

# refused kinds of path
symlink("$dir/target", "$dir/link.pid") or die;
eval { DaemonKit::PidFile->open("$dir/link.pid") };
like($@, qr/^pid file \Q$dir\E\/link\.pid: is a symbolic link/, 'symlink refused');
is($@->errno, ELOOP, '... ELOOP');
ok(!-e "$dir/target", 'nothing created through the link');
POSIX::mkfifo("$dir/fifo.pid", 0600) or die "mkfifo: $!";
my $t0 = time;
eval { DaemonKit::PidFile->open("$dir/fifo.pid") };
like($@, qr/^pid file \Q$dir\E\/fifo\.pid: not a regular file/, 'FIFO refused');
cmp_ok(time - $t0, '<=', 2, '... without hanging');
eval { DaemonKit::PidFile->open("$dir/no/such/dir/x.pid") };
like($@, qr/^pid file \Q$dir\E\/no\/such\/dir\/x\.pid: No such file or directory/, 'missing directory');
is($@->errno, ENOENT, '... ENOENT');
eval { DaemonKit::PidFile->check("$dir/fifo.pid") };
like($@, qr/not a regular file/, 'check refuses a FIFO');

# relative paths become absolute
{
    require Cwd;
    my $cwd = Cwd::getcwd();
    chdir $dir or die;
    my $rel = DaemonKit::PidFile->open('rel.pid');
    is($rel->path, "$dir/rel.pid", 'relative path made absolute');
    chdir $cwd;
    $rel->write;
    ok($rel->remove, 'removed after a chdir');
    ok(!-e "$dir/rel.pid", '... the right file');
}

done_testing;
