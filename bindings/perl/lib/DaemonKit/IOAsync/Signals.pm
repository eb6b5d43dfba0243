package DaemonKit::IOAsync::Signals;

use strict;
use warnings;
use Carp ();
use base qw(IO::Async::Handle);

our @CARP_NOT = qw(IO::Async::Loop IO::Async::Notifier IO::Async::Handle DaemonKit::IOAsync);

use DaemonKit ();
use DaemonKit::Error ();
use Errno ();
use Scalar::Util ();

our $VERSION = '0.1.0';

# The library has one signal pipe per process: whichever notifier drains it
# dispatches to the notifier that asked for the signal.
my %LIVE;

=head1 NAME

DaemonKit::IOAsync::Signals - an IO::Async notifier on libdaemonkit's signal fd

=head1 SYNOPSIS

    use DaemonKit::IOAsync::Signals;

    my $signals = DaemonKit::IOAsync::Signals->new(
        signals   => {
            TERM => sub { my ($self, $name, $num) = @_; $loop->stop },
            HUP  => sub { ... },
        },
        on_signal => sub { my ($self, $name, $num) = @_; warn "unhandled SIG$name\n" },
    );
    $loop->add($signals);      # registers the signals with the library, watches the fd
    ...
    $loop->remove($signals);   # stops watching (signals stay caught; DaemonKit::signal_close() restores)

=head1 DESCRIPTION

An L<IO::Async::Handle> whose read handle is a duplicate of the library's
signal fd (L<DaemonKit/signal_open>). When it becomes readable the notifier
calls L<DaemonKit/signal_next> until no signal is pending and invokes the
callback for each, from the loop - never from a signal handler. A flood of
one signal is delivered at least once; nothing is lost while the loop is
busy.

Several notifiers may coexist (they share the library's one signal pipe;
whichever wakes up first dispatches each signal to the notifier that asked
for it). Adding one to a loop croaks if one of its signals already has a Perl C<%SIG>
code handler (IO::Async's C<watch_signal> installs one): the library and
C<%SIG> must not both own a signal.

=head1 PARAMETERS

=head2 signals => { NAME => CODE, ... }

Signals by name (C<TERM>, C<SIGTERM>) or number, each with its callback,
invoked as C<< $cb->($notifier, $name, $number) >>. May be reconfigured while
in a loop (new signals are registered at once).

=head2 on_signal => CODE

Called for a pending signal that has no callback of its own (e.g. one
registered elsewhere with L<DaemonKit/signal_open>).

=head1 METHODS

=head2 configure

    $notifier->configure(signals => { USR2 => sub { ... } }, on_signal => sub { ... });

Takes the L</PARAMETERS> above (and L<IO::Async::Handle>'s); signals added
while the notifier is in a loop are registered with the library at once.

=head2 signal_names

    my @names = $notifier->signal_names;   # ('HUP', 'TERM')

=head2 on_read_ready

The L<IO::Async::Handle> event: drains the pending signals and dispatches
them. Not called directly.

=cut

sub _init {
    my ($self, $params) = @_;
    $self->{dk_handlers} = {};
    $self->SUPER::_init($params);
}

sub configure {
    my ($self, %params) = @_;
    my @added;
    if (exists $params{signals}) {
        my $h = delete $params{signals} || {};
        Carp::croak('signals must be a hash of NAME => CODE') unless ref $h eq 'HASH';
        for my $sig (keys %$h) {
            Carp::croak("signals: the handler of $sig is not a code reference") unless ref $h->{$sig} eq 'CODE';
            my $name = DaemonKit::signal_name(DaemonKit::signal_number($sig));
            push @added, $name unless $self->{dk_handlers}{$name};
            $self->{dk_handlers}{$name} = $h->{$sig};
        }
    }
    if (exists $params{on_signal}) {
        my $cb = delete $params{on_signal};
        Carp::croak('on_signal must be a code reference') if defined $cb && ref $cb ne 'CODE';
        $self->{dk_on_signal} = $cb;
    }
    $self->SUPER::configure(%params);
    $self->_register(@added) if @added && $self->loop;
}

sub signal_names { sort keys %{ $_[0]{dk_handlers} } }

sub _register {
    my ($self, @names) = @_;
    for my $name (@names) {
        if (ref $SIG{$name}) {
            DaemonKit::Error->throw(
                message => "SIG$name already has a Perl handler in \%SIG (IO::Async watch_signal?); "
                    . 'the library and %SIG must not both own a signal',
                errno => Errno::EBUSY(), op => 'watch_signals', skip => qr/^IO::Async::/);
        }
    }
    my $fd = DaemonKit::signal_open(@names);
    unless ($self->read_handle) {
        open(my $fh, '<&', $fd) or Carp::croak("dup of the signal fd $fd: $!");
        $self->configure(read_handle => $fh);
    }
}

sub _add_to_loop {
    my ($self, $loop) = @_;
    $self->_register($self->signal_names) unless $self->read_handle;
    Scalar::Util::weaken($LIVE{ Scalar::Util::refaddr($self) } = $self);
    $self->SUPER::_add_to_loop($loop);
}

sub _remove_from_loop {
    my ($self, $loop) = @_;
    delete $LIVE{ Scalar::Util::refaddr($self) };
    $self->SUPER::_remove_from_loop($loop);
    my $fh = $self->{read_handle};
    undef $self->{read_handle};
    $self->want_readready(0);
    close $fh if $fh;
}

sub on_read_ready {
    my ($self) = @_;
    while (my $num = DaemonKit::signal_next()) {
        my $name = DaemonKit::signal_name($num);
        my @all = ($self, grep { $_ && $_ != $self } values %LIVE);
        my ($owner) = grep { $_->{dk_handlers}{$name} } @all;
        ($owner) = grep { $_->{dk_on_signal} } @all unless $owner;
        next unless $owner;
        my $cb = $owner->{dk_handlers}{$name} || $owner->{dk_on_signal};
        $cb->($owner, $name, $num);
    }
}

1;
