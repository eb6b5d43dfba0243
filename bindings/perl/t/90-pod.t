# POD is well-formed and documents every public function and constant.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use DKTest;
use Test::More;
use File::Find ();
use Pod::Checker ();

my @files;
File::Find::find(sub { push @files, $File::Find::name if /\.pm\z/ }, "$DKTest::DIST/lib");
@files = sort @files;
ok(@files >= 7, scalar(@files) . ' modules');

for my $file (@files) {
    (my $short = $file) =~ s{^\Q$DKTest::DIST\E/}{};
    my $checker = Pod::Checker->new(-warnings => 1);
    open my $null, '>', '/dev/null' or die;
    $checker->parse_from_file($file, $null);
    is($checker->num_errors, 0, "$short: POD has no errors");
    is($checker->num_warnings, 0, "$short: POD has no warnings");

    my $src = read_file($file);
    my %documented = map { $_ => 1 } $src =~ /^=(?:head[234]|item)\s+(?:C<)?(\w+)/mg;
    my @subs = grep { !/^_/ && !/^(?:DESTROY|import|BUILD|_init)\z/ } $src =~ /^sub\s+(\w+)/mg;
    my @missing = grep { !$documented{$_} } @subs;
    is("@missing", '', "$short: every public function has POD (" . scalar(@subs) . ' functions)');
    like($src, qr/^=head1 NAME\n\n\S+ - /m, "$short: NAME section");
}

# Every constant is listed in DaemonKit's POD.
require DaemonKit;
no warnings "once";
my $main = read_file("$DKTest::DIST/lib/DaemonKit.pm");
my @undocumented = grep { $main !~ /^=item\s+\Q$_\E\b/m } @DaemonKit::CONSTANTS;
is("@undocumented", '', 'every DK_ constant is in the CONSTANTS section');

done_testing;
