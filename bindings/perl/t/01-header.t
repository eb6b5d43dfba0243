# The binding covers the whole C ABI: every function declared in
# include/daemonkit.h is known, attached from the library and exposed by a
# Perl wrapper; every #define has the same value as a Perl constant. A new
# C function without a Perl wrapper fails here.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use DKTest;
use Test::More;
use DaemonKit ();

my $header = $ENV{DAEMONKIT_HEADER} // "$DKTest::REPO/include/daemonkit.h";
unless (-e $header) {
    if (($ENV{CI} // '') eq 'true') { fail("header $header not found"); done_testing; exit }
    plan skip_all => "include/daemonkit.h not found at $header (set DAEMONKIT_HEADER)";
}
my $h = read_file($header);
(my $code = $h) =~ s{/\*.*?\*/}{}gs;
$code =~ s{//[^\n]*}{}g;

# Function declarations: a return type, then dk_name( ... );
my @c_funcs = sort { $a cmp $b } do {
    my %seen;
    grep { !$seen{$_}++ } $code =~ /^[A-Za-z_][\w \*]*?\b(dk_\w+)\s*\([^;{]*\)\s*;/mg;
};
cmp_ok(scalar @c_funcs, '>=', 50, 'found ' . scalar(@c_funcs) . ' functions in the header');

my @known = DaemonKit::FFI::functions();
is_deeply(\@known, \@c_funcs, 'the binding knows exactly the header\'s functions')
    or diag("missing from the binding: @{[ grep { my $f = $_; !grep { $_ eq $f } @known } @c_funcs ]}\n"
          . "not in the header: @{[ grep { my $f = $_; !grep { $_ eq $f } @c_funcs } @known ]}");

DaemonKit::version();   # force the load
my @attached = sort { $a cmp $b } DaemonKit::FFI::attached();
is_deeply(\@attached, \@c_funcs, 'every header function is attached from ' . DaemonKit::FFI::loaded());

require DaemonKit::PidFile;
require DaemonKit::Supervisor;
for my $f (@c_funcs) {
    my $w = DaemonKit::FFI::wrapper($f);
    ok($w && defined &{$w}, "$f is wrapped by " . ($w // '(nothing)'));
}

# Argument counts agree with the prototypes.
for my $f (@c_funcs) {
    my ($args) = $code =~ /\b\Q$f\E\s*\(([^;{]*)\)\s*;/s;
    $args =~ s/\s+/ /g;
    $args =~ s/^\s+|\s+$//g;
    my $n = ($args eq 'void' || $args eq '') ? 0 : scalar(split /,/, $args);
    is(scalar @{ $DaemonKit::FFI::FUNCTIONS{$f}[0] }, $n, "$f takes $n argument(s)");
}

# Constants.
my %defines = $code =~ /^#define\s+(DK_\w+)\s+(\S+)\s*$/mg;
cmp_ok(scalar keys %defines, '>=', 40, 'found ' . scalar(keys %defines) . ' DK_ constants');
for my $name (sort keys %defines) {
    my $v = $defines{$name};
    $v = '18446744073709551615' if $v eq 'UINT64_MAX';
    ok(DaemonKit->can($name), "DaemonKit::$name exists") or next;
    is(DaemonKit->can($name)->(), $v, "$name == $v");
}
my @perl_consts = grep { /^DK_/ } @DaemonKit::CONSTANTS;
is_deeply([sort @perl_consts], [sort keys %defines], 'no Perl constant without a #define');

done_testing;
