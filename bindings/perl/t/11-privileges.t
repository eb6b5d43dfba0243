use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use DKTest;
use Test::More;
use Errno qw(ESRCH ENOENT EPERM);
use DaemonKit qw(:all !fail);

# Lookups work for anyone.
my ($uid, $gid) = user_lookup('root');
is("$uid/$gid", '0/0', 'user_lookup root');
is(scalar user_lookup('0'), 0, 'user_lookup by number');
is(group_lookup('root'), 0, 'group_lookup root');
eval { user_lookup('no-such-user-dk') };
is($@->message, "unknown user 'no-such-user-dk'", 'unknown user');
is($@->errno, ESRCH, '... ESRCH');
eval { group_lookup('no-such-group-dk') };
is($@->message, "unknown group 'no-such-group-dk'", 'unknown group');
is($@->errno, ENOENT, '... ENOENT');
eval { drop_privileges('no-such-user-dk') };
is($@ && $@->message, "unknown user 'no-such-user-dk'", 'drop to an unknown user');
eval { drop_privileges('root', 'no-such-group-dk') };
is($@ && $@->message, "unknown group 'no-such-group-dk'", 'drop to an unknown group');
# privileges_drop is the C name (dk_privileges_drop); drop_privileges the older one.
eval { privileges_drop('no-such-user-dk') };
is($@ && $@->message, "unknown user 'no-such-user-dk'", 'privileges_drop: the same function');

SKIP: {
    if ($> != 0) {
        if (($ENV{CI} // '') eq 'true') { fail('privilege drop needs root under CI=true'); last SKIP }
        diag('skipping the privilege drop: not running as root');
        skip 'not running as root (the privilege drop needs root)', 8;
    }
    my @nobody = getpwnam('nobody');
    my @nogroup = getgrnam('nogroup');
    skip "no user 'nobody' or group 'nogroup'", 8 unless @nobody && @nogroup;
    my ($nuid, $ngid) = ($nobody[2], $nogroup[2]);

    # Drop in a forked child; read back every id from the kernel.
    my ($out, $st) = in_child(sub {
        # Give ourselves extra groups first: the drop must remove them.
        $) = "0 0 4 20";
        drop_privileges('nobody', 'nogroup');
        my %s;
        open my $fh, '<', "/proc/self/status" or die;
        while (<$fh>) { $s{$1} = $2 if /^(Uid|Gid|Groups):\s*(.*?)\s*$/ }
        my $again = eval { drop_privileges('nobody', 'nogroup'); 'ok' } // "$@";
        my $root = eval { drop_privileges('root'); 'ok' } // $@->message . '|' . $@->errno;
        my $setuid = (POSIX::setuid(0) ? 'regained root' : 'setuid(0) refused');
        return join "\n", "Uid=$s{Uid}", "Gid=$s{Gid}", "Groups=$s{Groups}", "again=$again", "root=$root", $setuid, "perl=$< $> $( $)";
    });
    is($st, 0, 'child exited cleanly') or diag($out);
    my %r = map { /^(\w+)=(.*)$/ ? ($1, $2) : ($_, 1) } split /\n/, $out;
    is($r{Uid}, join("\t", ($nuid) x 4), "real/effective/saved/fs uid are all $nuid");
    is($r{Gid}, join("\t", ($ngid) x 4), "real/effective/saved/fs gid are all $ngid");
    is($r{Groups}, join(' ', sort { $a <=> $b } _groups_of('nobody', $ngid)), 'supplementary groups are exactly the user\'s (extra ones removed)');
    is($r{again}, 'ok', 'dropping again to the same user is a no-op');
    is($r{root}, "drop privileges to 'root': not running as root|" . EPERM, 'after the drop: not running as root, EPERM');
    ok($r{'setuid(0) refused'}, 'setuid(0) fails afterwards');
    like($r{perl}, qr/^$nuid $nuid $ngid /, "Perl sees uid $nuid too ($r{perl})");
}

# Capabilities kept across the drop (dk_privileges_drop_caps): port 80 binds as nobody.
is(cap_from_name('NET_BIND_SERVICE'), 10, 'cap_from_name');
is(cap_from_name('cap_net_raw'), 13, 'cap_from_name: CAP_ prefix, lower case');
eval { cap_from_name('NO_SUCH_CAP') };
is($@ && $@->message, "unknown capability 'NO_SUCH_CAP'", 'unknown capability');
SKIP: {
    if ($> != 0) {
        if (($ENV{CI} // '') eq 'true') { fail('privileges_drop_caps needs root under CI=true'); last SKIP }
        skip 'not running as root', 4;
    }
    skip "no user 'nobody' or group 'nogroup'", 4 unless getpwnam('nobody') && getgrnam('nogroup');
    my ($out, $st) = in_child(sub {
        my $bad = eval { privileges_drop_caps('nobody', 'nogroup', { keep => ['SETUID'] }); 'ok' } // $@->errno;
        privileges_drop_caps('nobody', 'nogroup', { keep => ['NET_BIND_SERVICE'], no_new_privs => 1 });
        my %s;
        open my $fh, '<', "/proc/self/status" or die;
        while (<$fh>) { $s{$1} = $2 if /^(CapEff|CapAmb|NoNewPrivs):\s*(.*?)\s*$/ }
        require IO::Socket::INET;
        my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 80, Listen => 1, ReuseAddr => 1);
        my $bind = $l ? 'bound' : "failed: $!";
        return join "\n", "bad=$bad", "CapEff=$s{CapEff}", "CapAmb=$s{CapAmb}", "NoNewPrivs=$s{NoNewPrivs}", "bind=$bind";
    });
    is($st, 0, 'child exited cleanly') or diag($out);
    my %r = map { /^(\w+)=(.*)$/ ? ($1, $2) : ($_, 1) } split /\n/, $out;
    is($r{bad}, Errno::EINVAL(), 'SETUID cannot be kept (EINVAL, nothing changed)');
    is("$r{CapEff} $r{CapAmb} $r{NoNewPrivs}", '0000000000000400 0000000000000400 1', 'exactly NET_BIND_SERVICE, ambient too; no_new_privs');
    is($r{bind}, 'bound', '127.0.0.1:80 binds as nobody');
}

sub _groups_of {
    my ($user, $primary) = @_;
    my %g = ($primary => 1);
    setgrent();
    while (my @g = getgrent()) {
        $g{ $g[2] } = 1 if grep { $_ eq $user } split ' ', ($g[3] // '');
    }
    endgrent();
    return keys %g;
}

done_testing;
