package DaemonKit::Error;

use strict;
use warnings;
use overload
    '""'     => sub { $_[0]->as_string },
    'bool'   => sub { 1 },
    fallback => 1;

our $VERSION = '0.1.0';

=head1 NAME

DaemonKit::Error - the exception every DaemonKit wrapper croaks with

=head1 SYNOPSIS

    use DaemonKit::PidFile;
    my $pf = eval { DaemonKit::PidFile->open('/run/app.pid') };
    if (my $e = $@) {
        print STDERR $e;          # pid file /run/app.pid: daemon already running (PID: 4242) at app.pl line 3.
        print $!+0, "\n";         # EEXIST, as $! was set before the croak
        print $e->errno, "\n";    # the same, kept in the object
        print $e->other_pid, "\n" if $e->other_pid;
    }

=head1 DESCRIPTION

A failing wrapper sets C<$!> to the C function's errno and dies with a
C<DaemonKit::Error>. The object stringifies like a C<croak> message (the text
plus C< at FILE line N.> of the first caller outside the DaemonKit modules),
so C<print $@>, C<like($@, qr/.../)> and C<die $@> behave as usual; C<$!> is
set, but anything between the croak and your handler may change it, so read
C<< $e->errno >> when it matters.

=head1 METHODS

=head2 throw

    DaemonKit::Error->throw(message => $text, errno => $errno, op => 'dk_pidfile_open', %extra);

Sets C<$!> to C<$errno> (when given) and dies with a new error object. The
location is that of the first caller outside the DaemonKit modules (and
outside packages matching the optional C<< skip => qr/.../ >>).

=cut

sub throw {
    my ($class, %args) = @_;
    my ($file, $line) = ('?', 0);
    my $skip = delete $args{skip};
    for (my $i = 0; my @c = caller($i); $i++) {
        next if $c[0] =~ /^DaemonKit(?:::|\z)/;
        next if $skip && $c[0] =~ $skip;
        ($file, $line) = @c[1, 2];
        last;
    }
    my $self = bless { %args, file => $file, line => $line }, $class;
    $! = $self->{errno} if $self->{errno};
    die $self;
}

=head2 message

The text without the location: C<pid file /run/app.pid: daemon already running (PID: 4242)>.

=head2 errno

The positive errno (0 when not from a system error), e.g. C<EEXIST>; compare
with L<Errno> constants or C<%!>.

=head2 op

The C function that failed, e.g. C<dk_pidfile_open>.

=head2 other_pid

For C<daemon already running>: the pid holding the PID file (0 when it has not
written one yet).

=head2 as_string

The message with C< at FILE line N.> and a newline, as C<croak> would print it.

=cut

sub message   { $_[0]{message} }
sub errno     { $_[0]{errno} || 0 }
sub op        { $_[0]{op} }
sub other_pid { $_[0]{other_pid} }
sub as_string { my $s = shift; "$s->{message} at $s->{file} line $s->{line}.\n" }

1;
