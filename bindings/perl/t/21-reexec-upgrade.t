use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use DKTest;
use Test::More;
use DaemonKit qw(:all !fail);
use DaemonKit::PidFile;

my $dir = tempdir_clean();
my $script = "$dir/gen.pl";
open my $fh, '>', $script or die;
print $fh <<'PERL';
use strict; use warnings;
use DaemonKit qw(:all);
use DaemonKit::PidFile;
my ($dir, $mode) = @ARGV;
sub note { open my $fh, '>>', "$dir/notes" or die; print $fh "@_\n"; close $fh }
my @inherited = listen_fds(unset => 1);
my $fd = @inherited ? $inherited[0] : listen_tcp('127.0.0.1:0');
my $pf = DaemonKit::PidFile->open("$dir/gen.pid");
my $role = daemonize(foreground => 1, keep => [$fd]);
$pf->write;
my $gen = @inherited ? 2 : 1;
note("gen$gen pid=$$ role=$role port=" . socket_port($fd)
     . ' env=' . join(',', grep { exists $ENV{$_} } qw(LISTEN_FDS LISTEN_PID DAEMONKIT_PIDFILE_FD DAEMONKIT_REEXEC DAEMONKIT_READY_FD)));
if ($mode eq 'reexec') {
    if ($gen == 1) {
        eval { reexec(argv => ['/nonexistent/perl'], fds => [$fd], pidfile => $pf) };
        note('bad: ' . $@->message . ' fd-still-open=' . (-e "/proc/self/fd/$fd" ? 1 : 0));
        reexec(fds => [$fd], pidfile => $pf);          # argv: self_argv()
        note('not reached');
    }
    note('lock=' . join(',', DaemonKit::PidFile->check("$dir/gen.pid")));
    $pf->remove;
    exit 0;
}
if ($mode eq 'upgrade' || $mode eq 'upgrade-fail') {
    if ($gen == 1) {
        my $new = eval { upgrade(fds => [$fd], pidfile => $pf, timeout => 10) };
        note($new ? "upgraded to $new" : 'upgrade error: ' . $@->message . ' errno=' . $@->errno);
        note('pidfile-after=' . join(',', DaemonKit::PidFile->check("$dir/gen.pid")));
        if ($new) { $pf->close; exit 0 }
        $pf->remove;
        exit 0;
    }
    if ($mode eq 'upgrade-fail') {
        DaemonKit::fail(4, 'cannot load the new config');
        exit 4;
    }
    ready();
    signal_open('TERM');
    signal_wait(20);
    $pf->remove;
    exit 0;
}
PERL
close $fh;

sub notes { my @l = split /\n/, read_file("$dir/notes") // ''; return @l }

# --- re-exec: same pid, listener kept, PID file adopted ---------------------------
my $pid = spawn_perl(args => [$script, $dir, 'reexec'], stderr => "$dir/reexec.err");
my $st = wait_exit($pid, 15);
is($st, 0, 're-exec run exited 0') or diag(read_file("$dir/reexec.err"));
my @n = notes();
my ($port1) = ($n[0] // '') =~ /port=(\d+)/;
like($n[0] // '', qr/^gen1 pid=$pid role=${\ DK_ROLE_FOREGROUND} port=\d+ env=$/, 'first image');
like($n[1] // '', qr{^bad: re-exec /nonexistent/perl: No such file or directory fd-still-open=1$}, 'a failed re-exec croaks and leaves the fds as they were');
like($n[2] // '', qr/^gen2 pid=$pid role=${\ DK_ROLE_FOREGROUND} port=$port1 env=$/,
    'second image: same pid, same listening port, DK_ROLE_FOREGROUND, %ENV cleaned of the hand-over variables');
is($n[3] // '', "lock=running,$pid", 'the PID file stayed locked through the re-exec');
ok(!grep({ /not reached/ } @n), 'reexec did not return');
ok(!-e "$dir/gen.pid", 'removed at the end');
unlink "$dir/notes";

# --- upgrade: a new generation takes over ------------------------------------------
$pid = spawn_perl(args => [$script, $dir, 'upgrade'], stderr => "$dir/upgrade.err");
$st = wait_exit($pid, 15);
is($st, 0, 'old generation exited 0 after the upgrade') or diag(read_file("$dir/upgrade.err"));
@n = notes();
my ($new) = join("\n", @n) =~ /^upgraded to (\d+)$/m;
ok($new, "upgrade returned the new pid ($new)");
track_pid($new);
like(join("\n", @n), qr/^gen2 pid=$new role=${\ DK_ROLE_UPGRADE} port=\d+ env=$/m, 'new generation: DK_ROLE_UPGRADE, same listener');
like(join("\n", @n), qr/^pidfile-after=running,$new$/m, 'the PID file holds the new pid');
ok(alive($new), 'new generation running');
is(DaemonKit::PidFile->kill("$dir/gen.pid", 'TERM'), $new, 'TERM to the new generation through the pid file');
ok(wait_until(sub { !alive($new) }, 5), 'new generation stopped');
unlink "$dir/notes";

# --- upgrade failure: rolled back with the new generation's message ------------------
$pid = spawn_perl(args => [$script, $dir, 'upgrade-fail'], stderr => "$dir/upgrade-fail.err");
$st = wait_exit($pid, 15);
is($st, 0, 'old generation kept going and exited 0');
@n = notes();
like(join("\n", @n), qr/^upgrade error: upgrade failed: cannot load the new config errno=${\ Errno::ECANCELED()}$/m,
    "upgrade croaks 'upgrade failed: <the new generation's message>', ECANCELED");
like(join("\n", @n), qr/^pidfile-after=running,$pid$/m, 'the PID file holds the old pid again');

done_testing;
