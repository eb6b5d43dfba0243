use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use DKTest;
use Test::More;

use_ok('DaemonKit', ':all');
use_ok($_) for qw(DaemonKit::FFI DaemonKit::Error DaemonKit::PidFile DaemonKit::Supervisor
                  DaemonKit::IOAsync DaemonKit::IOAsync::Signals);

ok(DaemonKit::FFI::loaded(), 'library loaded from ' . (DaemonKit::FFI::loaded() // 'nowhere'));
is(DaemonKit::version() >> 16, DaemonKit::DK_VERSION_MAJOR(), 'major version of the loaded library matches the header');
is(DaemonKit::version(), DaemonKit::DK_VERSION(), 'dk_version() == DK_VERSION');
like(DaemonKit::version_string(), qr/^\d+\.\d+\.\d+\z/, 'version_string ' . DaemonKit::version_string());
is(DaemonKit::strerror(-17), 'File exists', 'strerror(-EEXIST)');
is(DaemonKit::strerror(17), 'File exists', 'strerror(EEXIST)');

# --- finding the library: explicit path, $DAEMONKIT_LIB, system path --------
my $lib = DaemonKit::FFI::loaded();
SKIP: {
    skip 'the library was found on the system path, not as a file', 6 unless -e $lib;
    my $probe = 'my $v = DaemonKit::version(); print DaemonKit::FFI::loaded(), "|$v\n"';

    my $out = run_perl("use DaemonKit lib => '$lib'; $probe", unset => ['DAEMONKIT_LIB']);
    like($out, qr/^\Q$lib\E\|\d+$/m, 'explicit path: use DaemonKit lib => PATH');

    $out = run_perl("use DaemonKit; $probe", env => { DAEMONKIT_LIB => $lib });
    like($out, qr/^\Q$lib\E\|\d+$/m, '$DAEMONKIT_LIB');

    (my $dir = $lib) =~ s{/[^/]+\z}{};
    $out = run_perl("use DaemonKit; $probe", unset => ['DAEMONKIT_LIB'], env => { LD_LIBRARY_PATH => $dir });
    like($out, qr/^libdaemonkit\.so(?:\.0)?\|\d+$|^\S*libdaemonkit\S*\|\d+$/m,
        "system library path (LD_LIBRARY_PATH=$dir): " . (split /\|/, $out)[0]);

    my $st;
    ($out, $st) = run_perl("use DaemonKit; $probe", env => { DAEMONKIT_LIB => '/nonexistent/libdaemonkit.so' });
    like($out, qr{cannot load libdaemonkit \(set DAEMONKIT_LIB to its path\): /nonexistent/libdaemonkit\.so}, 'a bad path croaks naming it');
    isnt($st >> 8, 0, '... and the program dies');

    $out = run_perl("use DaemonKit lib => '$lib'; DaemonKit::FFI::load('/other.so')");
    like($out, qr/library already loaded from \Q$lib\E \(not loading \/other\.so\)/, 'a second, different path croaks');
}

done_testing;
