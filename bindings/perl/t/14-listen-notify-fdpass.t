use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use DKTest;
use Test::More;
use Errno qw(EADDRINUSE EINVAL ECONNREFUSED ENOENT ENAMETOOLONG);
use IO::Socket::INET ();
use IO::Socket::UNIX ();
use POSIX ();
use Socket qw(AF_UNIX SOCK_STREAM SOCK_DGRAM PF_UNSPEC);
use DaemonKit qw(:all !fail);

my $dir = tempdir_clean();

# --- TCP --------------------------------------------------------------------
my $fd = listen_tcp('127.0.0.1:0');
my $port = socket_port($fd);
ok($port > 0, "listen_tcp on port 0 picked $port");
is(socket_name($fd), "127.0.0.1:$port", 'socket_name');
my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port) or die "connect: $!";
ok($c, 'a client connects');
close $c;
eval { listen_tcp("127.0.0.1:$port") };
is($@ && $@->message, "127.0.0.1:$port: Address already in use", 'port in use names the address');
is($@ && $@->errno, EADDRINUSE, '... EADDRINUSE');
my ($flags) = (read_file("/proc/self/fdinfo/$fd") // '') =~ /^flags:\s*([0-7]+)/m;
ok(oct($flags) & 02000000, 'close-on-exec by default');
my $ifd = listen_tcp('127.0.0.1:0', inherit => 1, backlog => 16, reuseport => 1);
($flags) = (read_file("/proc/self/fdinfo/$ifd") // '') =~ /^flags:\s*([0-7]+)/m;
ok(!(oct($flags) & 02000000), 'inherit => 1: not close-on-exec');
my $rp = socket_port($ifd);
ok(listen_tcp("127.0.0.1:$rp", reuseport => 1), 'reuseport: a second listener on the same port');
eval { listen_tcp('127.0.0.1:99999') };
like($@, qr/^127\.0\.0\.1:99999: invalid address/, 'port out of range');
eval { listen_tcp('127.0.0.1:0', bogus => 1) };
like($@, qr/unknown option bogus/, 'unknown option');

# --- Unix --------------------------------------------------------------------
my $upath = "$dir/app.sock";
my $ufd = listen_unix($upath, mode => 0660);
is(socket_name($ufd), $upath, 'listen_unix: socket_name is the path');
is((stat $upath)[2] & 0777, 0660, 'mode 0660');
ok(IO::Socket::UNIX->new(Peer => $upath), 'a client connects');
eval { listen_unix($upath) };
is($@ && $@->message, "$upath: Address already in use", 'a socket somebody accepts on is not replaced');
POSIX::close($ufd);
my $ufd2 = listen_unix($upath);
ok($ufd2 > 2, 'a socket file left by a dead server is replaced');
POSIX::close($ufd2);
my $abs = listen_unix("\@dk-perl-test-$$");
is(socket_name($abs), "\@dk-perl-test-$$", 'abstract socket');
POSIX::close($abs);
eval { listen_unix('relative.sock') };
is($@ && $@->errno, EINVAL, 'relative path: EINVAL');
eval { listen_unix('/' . ('x' x 200)) };
is($@ && $@->errno, ENAMETOOLONG, 'too long: ENAMETOOLONG');
eval { socket_port($ufd2 + 1000) };
ok($@, 'socket_port on a bad fd croaks');

# --- LISTEN_FDS (socket activation) ----------------------------------------
my ($out) = in_child(sub {
    my @r;
    push @r, 'none=' . scalar(listen_fds());
    POSIX::dup2($fd, 3) or die;
    POSIX::dup2($ifd, 4) or die;
    $ENV{LISTEN_PID} = $$;
    $ENV{LISTEN_FDS} = 2;
    $ENV{LISTEN_FDNAMES} = 'http:admin';
    my @fds = listen_fds(names => \my @names);
    push @r, "fds=@fds", "names=@names", 'port=' . socket_port($fds[0]);
    push @r, 'env-kept=' . ($ENV{LISTEN_FDS} // 'unset');
    my @again = listen_fds(unset => 1);
    push @r, 'again=' . scalar(@again), 'env-unset=' . ($ENV{LISTEN_FDS} // 'unset');
    $ENV{LISTEN_PID} = $$ + 1;
    $ENV{LISTEN_FDS} = 1;
    push @r, 'other-pid=' . scalar(listen_fds());
    $ENV{LISTEN_PID} = $$;
    $ENV{LISTEN_FDS} = 'x';
    push @r, 'malformed=' . (eval { listen_fds(); 'no error' } // $@->errno);
    return join "\n", @r;
});
my %r = map { split /=/, $_, 2 } split /\n/, $out;
is($r{none}, 0, 'listen_fds: 0 without LISTEN_FDS');
is($r{fds}, '3 4', 'listen_fds: fds from 3');
is($r{names}, 'http admin', 'names from LISTEN_FDNAMES');
is($r{port}, $port, 'fd 3 is the passed listener');
is($r{'env-kept'}, 2, 'variables kept by default');
is($r{again} . '/' . $r{'env-unset'}, '2/unset', 'unset => 1 removes the variables');
is($r{'other-pid'}, 0, 'LISTEN_PID of another process: 0');
is($r{malformed}, EINVAL, 'malformed LISTEN_FDS: EINVAL');

# --- sd_notify -----------------------------------------------------------------
{
    local $ENV{NOTIFY_SOCKET};
    delete $ENV{NOTIFY_SOCKET};
    is(notify('READY=1'), 0, 'notify without NOTIFY_SOCKET: 0');
    is(watchdog_usec(), 0, 'watchdog_usec: 0 when not enabled');
    for my $kind ('path', 'abstract') {
        my $name = $kind eq 'path' ? "$dir/notify.sock" : "\@dk-perl-notify-$$";
        my $addr = $kind eq 'path' ? $name : "\0dk-perl-notify-$$";
        socket(my $s, AF_UNIX, SOCK_DGRAM, 0) or die;
        bind($s, Socket::pack_sockaddr_un($addr)) or die "bind: $!";
        $ENV{NOTIFY_SOCKET} = $name;
        is(notify("READY=1\nSTATUS=serving"), 1, "notify to a $kind socket: sent");
        recv($s, my $msg, 4096, 0);
        is($msg, "READY=1\nSTATUS=serving", '... datagram received');
        notify_reloading();
        recv($s, $msg, 4096, 0);
        like($msg, qr/^RELOADING=1\nMONOTONIC_USEC=\d+$/, 'notify_reloading');
        notify_stopping();
        recv($s, $msg, 4096, 0);
        is($msg, 'STOPPING=1', 'notify_stopping');
        close $s;
    }
    unlink "$dir/notify.sock";
    $ENV{NOTIFY_SOCKET} = "$dir/notify.sock";
    eval { notify('READY=1') };
    like($@, qr/^notify NOTIFY_SOCKET=\Q$dir\E\/notify\.sock: /, 'nobody listening croaks naming the socket');
    ok($@ && ($@->errno == ENOENT || $@->errno == ECONNREFUSED), '... ENOENT/ECONNREFUSED');
    my ($r) = in_child(sub { eval { ready(); 'no error' } // $@->message });
    like($r, qr/^ready: notify \Q$dir\E\/notify\.sock: /, 'ready() croaks when READY=1 cannot be sent');
    delete $ENV{NOTIFY_SOCKET};
    ($r) = in_child(sub { ready() });
    is($r, 1, 'ready() without NOTIFY_SOCKET and without a launcher: 1');
    local $ENV{WATCHDOG_USEC} = 3000000;
    local $ENV{WATCHDOG_PID} = $$;
    is(watchdog_usec(), 3000000, 'watchdog_usec from WATCHDOG_USEC');
    $ENV{WATCHDOG_PID} = $$ + 1;
    is(watchdog_usec(), 0, '... not for another pid');
}

# --- fd passing --------------------------------------------------------------
socketpair(my $a, my $b, AF_UNIX, SOCK_STREAM, PF_UNSPEC) or die;
pipe(my $pr, my $pw) or die;
is(fd_send($a, 'here', $pr, fileno($pw)), 4, 'fd_send: 4 bytes with two fds');
my ($data, @fds) = fd_recv($b);
is($data, 'here', 'fd_recv: data');
is(scalar @fds, 2, 'fd_recv: two fds');
open(my $w2, '>&=', $fds[1]) or die;
$w2->autoflush(1);
print $w2 "through the passed fd\n";
close $w2;
close $pw;
my $line = <$pr>;
is($line, "through the passed fd\n", 'the received fd is the same pipe');
POSIX::close($fds[0]);
fd_send($a, 'x');
($data, @fds) = fd_recv($b);
is("$data/" . scalar(@fds), 'x/0', 'a message without fds');
close $a;
($data) = fd_recv($b);
is($data, '', 'peer closed: empty data');
socketpair(my $da, my $db, AF_UNIX, SOCK_DGRAM, PF_UNSPEC) or die;
fd_send($da, 'abcdef', $pr);
eval { fd_recv($db, max => 2) };
is($@ && $@->message, 'fd_recv on fd ' . fileno($db) . ': Message too long', 'datagram truncated: EMSGSIZE');
fd_send($da, 'abc', $pr, $pr);
{
    # CMSG padding leaves room for an extra fd: it must still be reported as truncation.
    my @got = eval { fd_recv($db, max_fds => 1) };
    is($@ && $@->errno, Errno::EMSGSIZE(), 'more fds than room: EMSGSIZE');
    POSIX::close($_) for @got[1 .. $#got];
}
eval { fd_send($b, '') };
like($@, qr/at least one byte/, 'fd_send needs data');
eval { fd_send(fileno($pr), 'x') };
like($@, qr/^fd_send on fd \d+: Socket operation on non-socket/, 'fd_send on a pipe: ENOTSOCK');

done_testing;
