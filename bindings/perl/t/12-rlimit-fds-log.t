use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use DKTest;
use Test::More;
use Errno qw(EBADF EINVAL EPERM);
use Fcntl qw(F_GETFD FD_CLOEXEC);
use POSIX ();
use DaemonKit qw(:all !fail);

my $dir = tempdir_clean();

# --- rlimits ---------------------------------------------------------------
my ($soft, $hard) = rlimit_get('NOFILE');
ok($soft > 0 && $hard >= $soft, "NOFILE $soft/$hard");
is(scalar rlimit_get(DK_RLIMIT_NOFILE), $soft, 'by constant, scalar context: soft');
is(scalar rlimit_get('RLIMIT_NOFILE'), $soft, "by 'RLIMIT_' name");
eval { rlimit_get('BOGUS') };
like($@, qr/^rlimit: unknown resource 'BOGUS'/, 'unknown resource name');
eval { rlimit_get(999) };
is($@ && $@->errno, EINVAL, 'unknown resource number: EINVAL');

my ($out) = in_child(sub {
    my @r;
    push @r, rlimit_nofile(64);
    push @r, join '/', rlimit_get('NOFILE');
    push @r, rlimit_nofile(1 << 40);                          # capped at the hard limit
    rlimit_set('NOFILE', 100);                                # hard unchanged
    push @r, join '/', rlimit_get('NOFILE');
    rlimit_disable_core();
    push @r, join '/', rlimit_get('CORE');
    push @r, eval { rlimit_set('NOFILE', 50, 40); 'set' } // $@->message;
    if ($> == 0) {
        rlimit_set('NOFILE', 30, 30);
        POSIX::setuid(65534);
        push @r, eval { rlimit_set('NOFILE', 30, 60); 'raised' } // $@->errno;
    } else {
        push @r, EPERM;
    }
    return join ',', @r;
});
my @r = split /,/, $out;
is($r[0], 64, 'rlimit_nofile(64) obtains 64');
is($r[1], "64/$hard", '... soft 64, hard unchanged');
is($r[2], $hard, 'rlimit_nofile(huge) is capped at the hard limit');
is($r[3], "100/$hard", 'rlimit_set with the hard limit omitted keeps it');
is($r[4], '0/0', 'rlimit_disable_core: CORE 0/0');
like($r[5], qr/^rlimit NOFILE 50\/40: Invalid argument/, 'soft above hard is refused');
is($r[6], EPERM, 'raising the hard limit without root: EPERM');
is(DK_RLIM_INFINITY, 18446744073709551615, 'DK_RLIM_INFINITY');

# --- fds -------------------------------------------------------------------
pipe(my $r, my $w) or die;
fcntl($r, Fcntl::F_SETFD(), 0);
ok(fd_set_cloexec($r), 'fd_set_cloexec(handle)');
ok(fcntl($r, F_GETFD, 0) & FD_CLOEXEC, '... FD_CLOEXEC set');
ok(fd_set_cloexec(fileno($r), 0), 'fd_set_cloexec(fd, 0)');
ok(!(fcntl($r, F_GETFD, 0) & FD_CLOEXEC), '... cleared');
eval { fd_set_cloexec(9999) };
is($@ && $@->message, 'fd 9999: Bad file descriptor', 'fd_set_cloexec on a closed fd');
is($! + 0, EBADF, '... EBADF');

($out) = in_child(sub {
    my @fds = map { POSIX::dup(0) } 1 .. 4;      # four fds above 2
    my $keep = $fds[1];
    fd_close_from(3, $keep, fileno($w));
    my @open = grep { -e "/proc/self/fd/$_" } @fds;
    my $w_open = -e '/proc/self/fd/' . fileno($w) ? 1 : 0;
    syswrite($w, join(' ', "kept=@open", "w=$w_open", "want=$keep"));
    return '';
});
my $got = '';
sysread($r, $got, 100);
my ($kept, $want) = $got =~ /^kept=(\S*) w=1 want=(\d+)$/;
ok(defined $kept && $kept eq $want, "fd_close_from(3, keep...) left exactly the kept fds open ($got)");
eval { fd_close_from(-1) };
is($@ && $@->errno, EINVAL, 'fd_close_from(-1): EINVAL');

# --- log redirect and reopen ---------------------------------------------------
my $log = "$dir/app.log";
($out) = in_child(sub {
    log_open($log);
    print STDOUT "line one (stdout)\n";
    print STDERR "line two (stderr)\n";
    system('echo from a child process');              # inherits fds 1 and 2
    rename $log, "$log.1" or die;
    print STDOUT "line three (before reopen)\n";
    log_reopen();
    print STDOUT "line four (after reopen)\n";
    STDOUT->flush;
    return 'ok';
});
is($out, 'ok', 'child ran');
is(read_file("$log.1"), "line one (stdout)\nline two (stderr)\nfrom a child process\nline three (before reopen)\n",
    'log_open: stdout and stderr appended, Perl buffers flushed first');
is(read_file($log), "line four (after reopen)\n", 'log_reopen: new lines go to the new file');
is((stat "$log.1")[2] & 0777, 0640, 'log created 0640');

($out) = in_child(sub {
    log_open($log, which => 'stderr');
    print STDERR "only stderr\n";
    return 'stdout kept';
});
is($out, 'stdout kept', "which => 'stderr' leaves stdout alone");
like(read_file($log), qr/only stderr\n\z/, '... stderr appended');

($out) = in_child(sub { eval { log_reopen() }; $@->message });
is($out, 'log reopen: no log file was opened (log_open)', 'log_reopen without log_open');
eval { log_open("$dir/missing/dir/x.log") };
is($@ && $@->message, "log file $dir/missing/dir/x.log: No such file or directory", 'log_open into a missing directory');
eval { log_open($log, which => 'nowhere') };
like($@, qr/which must be/, 'bad which');

done_testing;
