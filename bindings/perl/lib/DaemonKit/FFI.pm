package DaemonKit::FFI;

# The raw layer: finds libdaemonkit.so, attaches every function of
# include/daemonkit.h with FFI::Platypus (api 2) as DaemonKit::FFI::dk_*,
# and says which Perl wrapper covers each one. Nothing here croaks on a
# negative return: that is the job of the wrappers in DaemonKit and its
# submodules.

use strict;
use warnings;
use Carp ();
use FFI::Platypus 2.00;
use FFI::Platypus::Memory qw(malloc free strdup memcpy);
use FFI::Platypus::Buffer qw(scalar_to_buffer);
use FFI::Platypus::Closure ();    # loaded now: a daemon may not read @INC after dropping privileges

our $VERSION = '0.1.0';

# Name => [ [argument types], return type, the Perl wrapper that exposes it ].
# Types follow include/daemonkit.h: buffers, fd arrays and argv vectors are
# passed as 'opaque' pointers that the wrappers build (so NULL and lengths
# are exactly what the C side documents).
our %FUNCTIONS = (
    dk_version               => [ [], 'uint32', 'DaemonKit::version' ],
    dk_strerror              => [ ['int'], 'string', 'DaemonKit::strerror' ],

    dk_pidfile_open          => [ [qw(string uint32 uint32 opaque* sint32*)], 'int', 'DaemonKit::PidFile::open' ],
    dk_pidfile_write         => [ ['opaque'], 'int', 'DaemonKit::PidFile::write' ],
    dk_pidfile_fd            => [ ['opaque'], 'int', 'DaemonKit::PidFile::fd' ],
    dk_pidfile_close         => [ ['opaque'], 'int', 'DaemonKit::PidFile::close' ],
    dk_pidfile_remove        => [ ['opaque'], 'int', 'DaemonKit::PidFile::remove' ],
    dk_pidfile_check         => [ [qw(string sint32*)], 'int', 'DaemonKit::PidFile::check' ],
    dk_pidfile_kill          => [ [qw(string int sint32*)], 'int', 'DaemonKit::PidFile::kill' ],

    dk_privileges_drop       => [ [qw(string string uint32)], 'int', 'DaemonKit::drop_privileges' ],
    dk_privileges_drop_caps  => [ [qw(string string uint32 uint64)], 'int', 'DaemonKit::privileges_drop_caps' ],
    dk_cap_from_name         => [ [qw(string)], 'int', 'DaemonKit::cap_from_name' ],
    dk_user_lookup           => [ [qw(string uint32* uint32*)], 'int', 'DaemonKit::user_lookup' ],
    dk_group_lookup          => [ [qw(string uint32*)], 'int', 'DaemonKit::group_lookup' ],

    dk_rlimit_get            => [ [qw(int uint64* uint64*)], 'int', 'DaemonKit::rlimit_get' ],
    dk_rlimit_set            => [ [qw(int uint64 uint64)], 'int', 'DaemonKit::rlimit_set' ],
    dk_rlimit_nofile         => [ [qw(uint64 uint64*)], 'int', 'DaemonKit::rlimit_nofile' ],
    dk_rlimit_disable_core   => [ [], 'int', 'DaemonKit::rlimit_disable_core' ],

    dk_fd_set_cloexec        => [ [qw(int int)], 'int', 'DaemonKit::fd_set_cloexec' ],
    dk_fd_close_from         => [ [qw(int opaque size_t)], 'int', 'DaemonKit::fd_close_from' ],
    dk_log_open              => [ [qw(string uint32)], 'int', 'DaemonKit::log_open' ],
    dk_log_reopen            => [ [], 'int', 'DaemonKit::log_reopen' ],

    dk_signal_open           => [ [qw(opaque size_t)], 'int', 'DaemonKit::signal_open' ],
    dk_signal_open_flags     => [ [qw(opaque size_t uint32)], 'int', 'DaemonKit::signal_open' ],
    dk_signal_next           => [ [], 'int', 'DaemonKit::signal_next' ],
    dk_signal_wait           => [ ['int'], 'int', 'DaemonKit::signal_wait' ],
    dk_signal_close          => [ [], 'int', 'DaemonKit::signal_close' ],
    dk_signal_reset_child    => [ [], 'int', 'DaemonKit::signal_reset_child' ],
    dk_signal_ignore_sigpipe => [ [], 'int', 'DaemonKit::signal_ignore_sigpipe' ],

    dk_listen_tcp            => [ [qw(string int uint32)], 'int', 'DaemonKit::listen_tcp' ],
    dk_listen_unix           => [ [qw(string uint32 int uint32)], 'int', 'DaemonKit::listen_unix' ],
    dk_socket_port           => [ ['int'], 'int', 'DaemonKit::socket_port' ],
    dk_socket_name           => [ [qw(int opaque size_t)], 'int', 'DaemonKit::socket_name' ],
    dk_listen_fds            => [ [qw(uint32 opaque size_t)], 'int', 'DaemonKit::listen_fds' ],

    dk_notify                => [ ['string'], 'int', 'DaemonKit::notify' ],
    dk_notify_reloading      => [ [], 'int', 'DaemonKit::notify_reloading' ],
    dk_notify_stopping       => [ [], 'int', 'DaemonKit::notify_stopping' ],
    dk_notify_fd             => [ ['int'], 'int', 'DaemonKit::notify_fd' ],
    dk_watchdog_usec         => [ ['uint64*'], 'int', 'DaemonKit::watchdog_usec' ],

    dk_fd_send               => [ [qw(int opaque size_t opaque size_t)], 'int', 'DaemonKit::fd_send' ],
    dk_fd_recv               => [ [qw(int opaque size_t opaque size_t*)], 'int', 'DaemonKit::fd_recv' ],

    dk_daemonize             => [ [qw(uint32 opaque size_t string int uint32)], 'int', 'DaemonKit::daemonize' ],
    dk_ready                 => [ [], 'int', 'DaemonKit::ready' ],
    dk_fail                  => [ [qw(int string)], 'int', 'DaemonKit::fail' ],
    dk_reexec                => [ [qw(opaque opaque size_t string opaque)], 'int', 'DaemonKit::reexec' ],
    dk_upgrade               => [ [qw(opaque opaque size_t string opaque uint32 opaque size_t)], 'int', 'DaemonKit::upgrade' ],

    dk_supervisor_new                  => [ ['opaque*'], 'int', 'DaemonKit::Supervisor::new' ],
    dk_supervisor_free                 => [ ['opaque'], 'int', 'DaemonKit::Supervisor::DESTROY' ],
    dk_supervisor_set_workers          => [ [qw(opaque uint32)], 'int', 'DaemonKit::Supervisor::set_workers' ],
    dk_supervisor_set_graceful_timeout => [ [qw(opaque uint32)], 'int', 'DaemonKit::Supervisor::set_graceful_timeout' ],
    dk_supervisor_set_ready_timeout    => [ [qw(opaque uint32)], 'int', 'DaemonKit::Supervisor::set_ready_timeout' ],
    dk_supervisor_set_worker           => [ [qw(opaque dk_worker_fn opaque)], 'int', 'DaemonKit::Supervisor::set_worker' ],
    dk_supervisor_set_exec             => [ [qw(opaque opaque)], 'int', 'DaemonKit::Supervisor::set_exec' ],
    dk_supervisor_set_post_fork        => [ [qw(opaque dk_hook_fn opaque)], 'int', 'DaemonKit::Supervisor::set_post_fork' ],
    dk_supervisor_set_event            => [ [qw(opaque dk_event_fn opaque)], 'int', 'DaemonKit::Supervisor::set_event' ],
    dk_supervisor_add_listener         => [ [qw(opaque int)], 'int', 'DaemonKit::Supervisor::add_listener' ],
    dk_supervisor_set_listen_names     => [ [qw(opaque opaque)], 'int', 'DaemonKit::Supervisor::set_listen_names' ],
    dk_supervisor_set_pidfile          => [ [qw(opaque opaque)], 'int', 'DaemonKit::Supervisor::set_pidfile' ],
    dk_supervisor_set_upgrade          => [ [qw(opaque opaque uint32)], 'int', 'DaemonKit::Supervisor::set_upgrade' ],
    dk_supervisor_run                  => [ ['opaque'], 'int', 'DaemonKit::Supervisor::run' ],
    dk_supervisor_add_listener_pair    => [ [qw(opaque int int)], 'int', 'DaemonKit::Supervisor::add_listener_pair' ],
    dk_supervisor_add_listener_slots   => [ [qw(opaque opaque uint32)], 'int', 'DaemonKit::Supervisor::add_listener_slots' ],
    dk_supervisor_set_stop_signal      => [ [qw(opaque int)], 'int', 'DaemonKit::Supervisor::set_stop_signal' ],
    dk_supervisor_set_restart          => [ [qw(opaque uint32 uint32 uint32)], 'int', 'DaemonKit::Supervisor::set_restart' ],
    dk_supervisor_set_flags            => [ [qw(opaque uint32)], 'int', 'DaemonKit::Supervisor::set_flags' ],
    dk_supervisor_set_stdio            => [ [qw(opaque dk_stdio_fn opaque)], 'int', 'DaemonKit::Supervisor::set_stdio' ],
    dk_supervisor_exit_status          => [ ['opaque'], 'int', 'DaemonKit::Supervisor::exit_status' ],
    dk_event_describe                  => [ [qw(int sint32 sint32 opaque size_t)], 'int', 'DaemonKit::Supervisor::describe_event' ],
);

our $FFI;          # the FFI::Platypus instance once loaded
our $LIB;          # the path (or soname) that was loaded
our @ATTACHED;     # names attached, in order

# Until the library is loaded every dk_* name is a stub that loads it on
# first use and then jumps to the real function.
for my $name (keys %FUNCTIONS) {
    no strict 'refs';
    *{"DaemonKit::FFI::$name"} = sub {
        load() unless $FFI;
        goto &{"DaemonKit::FFI::$name"};
    };
}

=head1 NAME

DaemonKit::FFI - the raw libdaemonkit bindings behind L<DaemonKit>

=head1 SYNOPSIS

    use DaemonKit::FFI;
    DaemonKit::FFI::load('/opt/daemonkit/lib/libdaemonkit.so');   # optional
    my $v = DaemonKit::FFI::dk_version();

=head1 DESCRIPTION

This module finds F<libdaemonkit.so> and attaches every function of
F<include/daemonkit.h> as C<DaemonKit::FFI::dk_*> with L<FFI::Platypus>
(C<< api => 2 >>). The functions return what C returns (a negative errno on
failure); use the idiomatic wrappers in L<DaemonKit>, L<DaemonKit::PidFile>
and L<DaemonKit::Supervisor> instead, which croak with a useful message.

=head1 FUNCTIONS

=head2 find_library

    my $path = DaemonKit::FFI::find_library();
    my $path = DaemonKit::FFI::find_library($explicit);

Where the library will be loaded from, in this order: the explicit path
given; C<$ENV{DAEMONKIT_LIB}>; the library directory recorded when this
module was built (C<perl Makefile.PL> takes it from C<pkg-config>, see
L</configured_libdir>); the system library path and C<LD_LIBRARY_PATH>
(found with L<FFI::CheckLib>); the C<libdir> that C<pkg-config> reports
for C<daemonkit> now; else the soname C<libdaemonkit.so.0> /
C<libdaemonkit.so> for the dynamic loader to resolve through
F<ld.so.cache>. So an installed library is found with no variable set:
the Debian package's through the loader, a C<make install> to any prefix
through the directory recorded at build time or C<pkg-config>.

=head2 configured_libdir

    my $dir = DaemonKit::FFI::configured_libdir();   # undef in the source tree

The directory holding F<libdaemonkit.so.0> that C<perl Makefile.PL>
recorded in the installed copy of this module (C<undef> when it recorded
none, and when running from the source tree).

=cut

# Replaced by Makefile.PL (PM_FILTER) in the copy that `make` puts in blib/ and installs.
my $CONFIGURED_LIBDIR = '@DAEMONKIT_LIBDIR@';

sub configured_libdir {
    return undef if $CONFIGURED_LIBDIR eq '' || $CONFIGURED_LIBDIR =~ /^\@/;
    return $CONFIGURED_LIBDIR;
}

sub _in_dir {
    my ($dir) = @_;
    return undef unless defined $dir && length $dir;
    for my $f ('libdaemonkit.so.0', 'libdaemonkit.so') {
        return "$dir/$f" if -e "$dir/$f";
    }
    return undef;
}

sub _pkg_config_libdir {
    my $dir = eval {
        local $SIG{__WARN__} = sub { };
        open(my $fh, '-|', 'pkg-config', '--variable=libdir', 'daemonkit') or return undef;
        my $out = <$fh>;
        close $fh or return undef;
        $out;
    };
    return undef unless defined $dir;
    chomp $dir;
    return $dir;
}

sub find_library {
    my ($explicit) = @_;
    return $explicit if defined $explicit && length $explicit;
    return $ENV{DAEMONKIT_LIB} if defined $ENV{DAEMONKIT_LIB} && length $ENV{DAEMONKIT_LIB};
    if (my $f = _in_dir(configured_libdir())) { return $f }
    my @found = eval {
        require FFI::CheckLib;
        FFI::CheckLib::find_lib(lib => 'daemonkit', symbol => 'dk_version');
    };
    return $found[0] if @found;
    if (my $f = _in_dir(_pkg_config_libdir())) { return $f }
    return 'libdaemonkit.so.0';
}

=head2 load

    DaemonKit::FFI::load();              # $ENV{DAEMONKIT_LIB} or the system path
    DaemonKit::FFI::load($path);

Loads the library and attaches every function. Called implicitly by the
first call of any wrapper; call it (or C<< use DaemonKit lib => $path >>)
first to choose the file. Loading a second, different path croaks. Croaks
with the loader's message when the file cannot be loaded or lacks a
function.

=cut

sub load {
    my ($path) = @_;
    if ($FFI) {
        return $LIB if !defined $path || $path eq $LIB;
        Carp::croak("daemonkit: library already loaded from $LIB (not loading $path)");
    }
    my @try = defined $path || (defined $ENV{DAEMONKIT_LIB} && length $ENV{DAEMONKIT_LIB})
        ? (find_library($path))
        : do { my $f = find_library(); $f eq 'libdaemonkit.so.0' ? ($f, 'libdaemonkit.so') : ($f) };
    my ($ffi, $lib, @errors);
    for my $candidate (@try) {
        my $f = FFI::Platypus->new(api => 2);
        my $warning = '';
        {
            local $SIG{__WARN__} = sub { $warning .= $_[0] };
            $f->lib($candidate);
            # Platypus loads lazily: resolving one symbol forces the dlopen.
            my $addr = $f->find_symbol('dk_version');
            if ($addr) { ($ffi, $lib) = ($f, $candidate) }
        }
        last if $ffi;
        $warning =~ s/\s+at \S+ line \d+\.?\n?\z//;
        $warning =~ s/^warning: error loading \Q$candidate\E: //;
        push @errors, $warning ? "$candidate: $warning" : "$candidate: dk_version not found";
    }
    unless ($ffi) {
        Carp::croak("daemonkit: cannot load libdaemonkit (set DAEMONKIT_LIB to its path): "
            . join('; ', @errors));
    }
    $ffi->type('(opaque,uint32)->int'           => 'dk_worker_fn');
    $ffi->type('(opaque,uint32)->void'          => 'dk_hook_fn');
    $ffi->type('(opaque,int,sint32,sint32)->void' => 'dk_event_fn');
    $ffi->type('(opaque,uint32)->int'           => 'dk_stdio_fn');
    my @missing = grep { !$ffi->find_symbol($_) } sort keys %FUNCTIONS;
    Carp::croak("daemonkit: $lib lacks " . join(', ', @missing) . " (an older library?)") if @missing;
    {
        # The stubs are replaced on purpose.
        local $SIG{__WARN__} = sub { warn @_ unless $_[0] =~ /^Subroutine DaemonKit::FFI::dk_\w+ redefined/ };
        for my $name (sort keys %FUNCTIONS) {
            my ($args, $ret) = @{ $FUNCTIONS{$name} };
            $ffi->attach([ $name => "DaemonKit::FFI::$name" ] => $args => $ret);
            push @ATTACHED, $name;
        }
    }
    ($FFI, $LIB) = ($ffi, $lib);
    return $lib;
}

=head2 loaded

True once the library is loaded; returns the path (or soname) it was loaded from.

=cut

sub loaded { $FFI ? $LIB : undef }

=head2 ffi

The L<FFI::Platypus> instance (loading the library first), for closures and
custom types.

=cut

sub ffi { load() unless $FFI; $FFI }

=head2 functions

    my @names = DaemonKit::FFI::functions();

Every C function the binding knows (sorted), i.e. every function declared
in F<include/daemonkit.h>; a test compares the two lists.

=head2 attached

    my @names = DaemonKit::FFI::attached();

The functions actually attached from the loaded library (empty before
L</load>).

=head2 wrapper

    my $sub_name = DaemonKit::FFI::wrapper('dk_pidfile_open');  # 'DaemonKit::PidFile::open'

The fully qualified Perl function or method that exposes a C function.

=cut

sub functions { sort keys %FUNCTIONS }
sub attached  { @ATTACHED }
sub wrapper   { my $f = $FUNCTIONS{ $_[0] } or return undef; $f->[2] }

=head1 HELPERS FOR THE WRAPPERS

=head2 sync_env

    DaemonKit::FFI::sync_env(qw(LISTEN_PID LISTEN_FDS));

Makes C<%ENV> agree with the C environment for these names. The library
unsets variables itself (C<LISTEN_*> with C<DK_LISTEN_FDS_UNSET>,
C<DAEMONKIT_READY_FD>/C<DAEMONKIT_REEXEC> in C<dk_daemonize>,
C<DAEMONKIT_PIDFILE_FD> when a PID file is adopted); Perl's C<%ENV> is a copy
taken at startup and would otherwise keep the old values.

=cut

my $GETENV;
sub sync_env {
    $GETENV ||= FFI::Platypus->new(api => 2, lib => [undef])->function(getenv => ['string'] => 'string');
    for my $name (@_) {
        my $v = $GETENV->call($name);
        if (!defined $v) { delete $ENV{$name} if exists $ENV{$name} }
        elsif (!defined $ENV{$name} || $ENV{$name} ne $v) { $ENV{$name} = $v }
    }
}

=head2 int_array

    my ($ptr, $n, $keep) = DaemonKit::FFI::int_array(@ints);

Packs C<int>s into a buffer; returns its address (C<undef>, i.e. NULL, for
an empty list), the count, and the scalar that owns the memory (keep it
alive during the call).

=cut

sub int_array {
    my @v = @_;
    return (undef, 0, undef) unless @v;
    my $buf = pack('i!*', @v);
    my ($ptr) = scalar_to_buffer($buf);
    return ($ptr, scalar(@v), \$buf);
}

=head2 out_buffer

    my ($ptr, $len, $ref) = DaemonKit::FFI::out_buffer($size);

A zero-filled buffer of C<$size> bytes for C to write into; C<$$ref> holds
the bytes afterwards.

=cut

sub out_buffer {
    my ($size) = @_;
    my $buf = "\0" x $size;
    my ($ptr, $len) = scalar_to_buffer($buf);
    return ($ptr, $len, \$buf);
}

=head2 c_string_array

    my $argv = DaemonKit::FFI::c_string_array(@strings);
    my $ptr  = $argv->ptr;      # char *const[], NULL-terminated

A NULL-terminated C array of C strings in C<malloc>ed memory that stays
valid until the object is destroyed (what C<dk_supervisor_set_upgrade> and
C<dk_supervisor_set_exec> require for the supervisor's life).

=cut

sub c_string_array { DaemonKit::FFI::CStringArray->new(@_) }

=head2 c_string

    my $s = DaemonKit::FFI::c_string($text);   # ->ptr valid while $s lives

One C string in C<malloc>ed memory (for C<dk_supervisor_set_listen_names>).

=cut

sub c_string { DaemonKit::FFI::CStringArray->new_single(@_) }

package DaemonKit::FFI::CStringArray;

=head1 DaemonKit::FFI::CStringArray

The object behind L</c_string_array> and L</c_string>.

=head2 new

    my $a = DaemonKit::FFI::CStringArray->new(@strings);

C<strdup>s every string (croaks on C<undef> or an embedded NUL) into a
C<malloc>ed, NULL-terminated pointer array.

=head2 new_single

    my $s = DaemonKit::FFI::CStringArray->new_single($string);

One C<strdup>ed string; L</ptr> is the C<char *>.

=head2 ptr

The C<char *const *> (or the single C<char *>) as an integer address, valid
while the object lives.

=head2 strings

The Perl strings it holds.

=cut

use FFI::Platypus::Memory qw(malloc free strdup);
use FFI::Platypus::Buffer qw(scalar_to_buffer);
use FFI::Platypus::Closure ();    # loaded now: a daemon may not read @INC after dropping privileges
use Config ();

my $PTRSIZE = $Config::Config{ptrsize};
my $PTRPACK = $PTRSIZE == 8 ? 'Q' : 'L';

sub new {
    my ($class, @strings) = @_;
    for (@strings) {
        Carp::croak('daemonkit: undefined string in an argument vector') unless defined;
        Carp::croak("daemonkit: argument contains a NUL byte: '$_'") if index($_, "\0") >= 0;
    }
    my @ptrs = map { strdup($_) } @strings;
    my $array = pack("$PTRPACK*", @ptrs, 0);
    my $mem = malloc(length $array);
    my ($src) = scalar_to_buffer($array);
    FFI::Platypus::Memory::memcpy($mem, $src, length $array);
    return bless { ptrs => \@ptrs, array => $mem, strings => [@strings] }, $class;
}

sub new_single {
    my ($class, $string) = @_;
    Carp::croak("daemonkit: string contains a NUL byte") if index($string, "\0") >= 0;
    return bless { ptrs => [ strdup($string) ], array => undef, strings => [$string] }, $class;
}

sub ptr     { my $s = shift; defined $s->{array} ? $s->{array} : $s->{ptrs}[0] }
sub strings { @{ $_[0]{strings} } }

sub DESTROY {
    my $s = shift;
    free($_) for grep { defined } @{ $s->{ptrs} || [] };
    free($s->{array}) if defined $s->{array};
    $s->{ptrs} = [];
    $s->{array} = undef;
}

package DaemonKit::FFI;

=head1 SEE ALSO

L<DaemonKit>, F<include/daemonkit.h>.

=cut

1;
