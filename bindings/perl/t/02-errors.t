# Failures croak with a DaemonKit::Error whose text names the object and the
# cause, with the errno in $! and in the object.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use DKTest;
use Test::More;
use Errno qw(EEXIST EADDRINUSE EINVAL EBADF ESRCH ENOENT);
use DaemonKit qw(:all !fail);
use DaemonKit::PidFile;

my $dir = tempdir_clean();

# A croak: message, location of the caller, $!, the object's fields.
my $fd = listen_tcp('127.0.0.1:0');
my $port = socket_port($fd);
my $line = __LINE__ + 1;
my $ok = eval { listen_tcp("127.0.0.1:$port"); 1 };
my ($err, $errno) = ($@, $! + 0);
ok(!$ok, 'binding a port in use croaks');
isa_ok($err, 'DaemonKit::Error');
is("$err", "127.0.0.1:$port: Address already in use at $0 line $line.\n", 'text names the address, location is the caller');
is($errno, EADDRINUSE, '$! is EADDRINUSE after the croak');
is($err->errno, EADDRINUSE, '->errno');
is($err->op, 'dk_listen_tcp', '->op names the C function');
is($err->message, "127.0.0.1:$port: Address already in use", '->message has no location');
is(DaemonKit::message_of($err), $err->message, 'message_of(error object)');
is(DaemonKit::message_of("plain die at foo.pl line 3.\n"), 'plain die', 'message_of(die string)');

# The issue's example: pid file held by a live process.
my $path = "$dir/x.pid";
my $pf = DaemonKit::PidFile->open($path);
$pf->write;
my ($out) = in_child(sub {
    my $ok = eval { DaemonKit::PidFile->open($path); 1 };
    return join '|', ($ok ? 'opened' : "$@"), $! + 0, ($ok ? 0 : $@->other_pid);
});
my ($text, $e, $other) = split /\|/, $out;
is($text, "pid file $path: daemon already running (PID: $$) at $0 line " . (__LINE__ - 4) . ".\n", 'already running (PID: N)');
is($e, EEXIST, '... $! is EEXIST');
is($other, $$, '... ->other_pid');

# Usage errors are EINVAL croaks too.
eval { signal_open('NOSUCHSIG') };
like($@, qr/^unknown signal 'NOSUCHSIG' at /, 'unknown signal name');
is($! + 0, EINVAL, '... EINVAL');
eval { daemonize(forground => 1) };
like($@, qr/^daemonize: unknown option forground at /, 'a misspelt option is refused, not ignored');
eval { listen_tcp('nonsense') };
like($@, qr/^nonsense: invalid address/, 'malformed address');
is($@->errno, EINVAL, '... EINVAL');
eval { socket_port(987654) };
like($@, qr/^fd 987654: Bad file descriptor/, 'bad fd');
eval { socket_port('abc') };
like($@, qr/'abc' is not a file descriptor/, 'a non-number fd');
eval { DaemonKit::PidFile->kill("$dir/none.pid", 'TERM') };
like($@, qr/^pid file \Q$dir\E\/none\.pid: No such file or directory/, 'kill of a missing pid file');
is($! + 0, ENOENT, '... ENOENT');

# $! survives to the handler even when destructors run during the unwind.
{
    package Noisy; sub new { bless {}, shift } sub DESTROY { $! = 0; local $!; open my $fh, '<', '/nonexistent' }
}
eval { my $guard = Noisy->new; listen_tcp("127.0.0.1:$port") };
is($@->errno, EADDRINUSE, '->errno is reliable even if $! was clobbered');

POSIX::close($fd);
$pf->remove;
done_testing;
