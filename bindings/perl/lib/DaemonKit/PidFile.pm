package DaemonKit::PidFile;

use strict;
use warnings;
use Errno ();
use File::Spec ();

use DaemonKit ();
use DaemonKit::FFI ();

our $VERSION = '0.1.0';

=head1 NAME

DaemonKit::PidFile - a locked PID file (BSD pidfile(3) semantics) on libdaemonkit

=head1 SYNOPSIS

    use DaemonKit::PidFile;

    # before daemonize: open and lock (croaks if another instance runs)
    my $pf = DaemonKit::PidFile->open('/run/app.pid');
    DaemonKit::daemonize();
    $pf->write;                      # in the daemon
    ...
    $pf->remove;                     # graceful shutdown: unlink (owner only) and close

    my ($state, $pid) = DaemonKit::PidFile->check('/run/app.pid');   # 'running', 'stale', 'missing'
    DaemonKit::PidFile->kill('/run/app.pid', 'HUP');                 # never a recycled pid

=head1 DESCRIPTION

The file is opened C<O_NOFOLLOW|O_CLOEXEC|O_NONBLOCK>, must be a regular file,
and carries an C<flock> held for the object's life: liveness is the lock,
never C<kill(pid, 0)>. After a L<DaemonKit/reexec> or an upgrade, L</open>
adopts the locked fd handed over by the old image instead of opening anew.

Keep the object referenced for the daemon's whole life: when it is destroyed
it is closed (the lock released, the file left in place). Forked children
(supervised workers) close their copy; only the owner that wrote its pid can
L</remove> the file. If the directory is not writable after a privilege drop,
the leftover file is harmless: its lock is free, so the next start treats it
as stale.

=head1 METHODS

=head2 open

    my $pf = DaemonKit::PidFile->open($path);
    my $pf = DaemonKit::PidFile->open($path, mode => 0600);

Opens and locks C<$path> (made absolute first; C<mode> default 0644). Croaks
with C<$!> set:

    pid file /run/app.pid: daemon already running (PID: 4242)     # EEXIST; $@->other_pid
    pid file /run/app.pid: locked by another process, not the pid in the file (PID 4242, not signalled)
                                                                     # EBUSY; $@->other_pid
    pid file /run/app.pid: is a symbolic link                        # ELOOP
    pid file /run/app.pid: not a regular file                        # EINVAL
    pid file /run/app.pid: Permission denied                         # EACCES, ENOENT, ...

=cut

sub open {
    my ($class, $path, %o) = @_;
    DaemonKit::_check_opts('DaemonKit::PidFile->open', \%o, qw(mode));
    DaemonKit::_usage('pid file: no path given') unless defined $path && length $path;
    my $abs = File::Spec->rel2abs($path);
    my ($h, $other) = (undef, 0);
    my $r = DaemonKit::FFI::dk_pidfile_open($path, $o{mode} // 0, 0, \$h, \$other);
    DaemonKit::FFI::sync_env('DAEMONKIT_PIDFILE_FD') if exists $ENV{DAEMONKIT_PIDFILE_FD};
    if ($r == -Errno::EEXIST()) {
        my $who = $other ? "PID: $other" : 'PID: unknown, not written yet';
        DaemonKit::_throw('dk_pidfile_open', $r, "pid file $abs: daemon already running ($who)", other_pid => $other);
    }
    if ($r == DaemonKit::DK_ERR_PIDFILE_FOREIGN()) {
        DaemonKit::_throw('dk_pidfile_open', $r, _foreign($abs, $other), other_pid => $other);
    }
    DaemonKit::_throw('dk_pidfile_open', $r, "pid file $abs: is a symbolic link (refused)") if $r == -Errno::ELOOP();
    DaemonKit::_throw('dk_pidfile_open', $r, "pid file $abs: not a regular file") if $r == -Errno::EINVAL();
    DaemonKit::_fail_op('dk_pidfile_open', $r, "pid file $abs") if $r < 0;
    return bless { h => $h, path => $abs, opener => $$ }, $class;
}

sub _handle {
    my ($self) = @_;
    DaemonKit::_throw('dk_pidfile', -Errno::EBADF(), "pid file $self->{path}: already closed") unless defined $self->{h};
    return $self->{h};
}

=head2 write

    $pf->write;

Writes this process's pid (truncate, pid, newline). Call it in the daemon,
after L<DaemonKit/daemonize>. Croaks C<pid file PATH: write: ...>.

=cut

sub write {
    my ($self) = @_;
    my $r = DaemonKit::FFI::dk_pidfile_write($self->_handle);
    DaemonKit::_fail_op('dk_pidfile_write', $r, "pid file $self->{path}: write") if $r < 0;
    return 1;
}

=head2 fd

    my $fd = $pf->fd;

The locked fd (close-on-exec; the library keeps it open across
L<DaemonKit/daemonize> by itself).

=head2 path

    my $path = $pf->path;     # absolute

=head2 is_open

True until L</close> or L</remove>.

=cut

sub fd {
    my ($self) = @_;
    my $r = DaemonKit::FFI::dk_pidfile_fd($self->_handle);
    DaemonKit::_fail_op('dk_pidfile_fd', $r, "pid file $self->{path}") if $r < 0;
    return $r;
}

sub path    { $_[0]{path} }
sub is_open { defined $_[0]{h} ? 1 : 0 }

=head2 close

    $pf->close;

Releases this process's reference without removing the file (a forked
child, or an old generation after an upgrade). Idempotent; also what
C<DESTROY> does.

=cut

sub close {
    my ($self) = @_;
    my $h = delete $self->{h};
    DaemonKit::FFI::dk_pidfile_close($h) if defined $h;
    return 1;
}

=head2 remove

    my $unlinked = $pf->remove;

Unlinks the file if this process owns it (wrote its pid and the file still
holds it), then closes the handle in every case. Returns 1 when unlinked,
0 with C<$!> set when it was not: C<EPERM> not the owner (a forked child, an
old master whose successor rewrote the file), C<EACCES> the directory is not
writable after a privilege drop (harmless: the lock is free). Croaks when
already closed.

=cut

sub remove {
    my ($self) = @_;
    my $h = $self->_handle;
    delete $self->{h};
    my $r = DaemonKit::FFI::dk_pidfile_remove($h);
    return 1 if $r == 0;
    if ($r == -Errno::EPERM() || $r == -Errno::EACCES()) {
        $! = -$r;
        return 0;
    }
    DaemonKit::_fail_op('dk_pidfile_remove', $r, "pid file $self->{path}: remove");
}

=head2 check

    my ($state, $pid) = DaemonKit::PidFile->check($path);
    my $state = DaemonKit::PidFile->check($path);

From the lock, never from C<kill(pid, 0)>: C<'running'> with the holder's
pid (0 if not written yet; the kernel proved that pid holds the lock),
C<'stale'> (file present, lock free) with the stale pid (0 if unreadable),
C<'foreign'> with the pid in the file when the lock is held by some other
process (that pid is not the daemon and is never signalled), or C<'missing'>
(no file) with 0. Croaks for symlinks, non-regular files and other errors
(C<EACCES> also when the file is locked and its pid's C</proc> entries are not
readable: another user's process, as non-root).

=cut

sub check {
    my ($class, $path) = @_;
    DaemonKit::_usage('pid file: no path given') unless defined $path && length $path;
    my $pid = 0;
    my $r = DaemonKit::FFI::dk_pidfile_check($path, \$pid);
    my $state;
    if    ($r == DaemonKit::DK_PIDFILE_RUNNING()) { $state = 'running' }
    elsif ($r == DaemonKit::DK_PIDFILE_STALE())   { $state = 'stale' }
    elsif ($r == DaemonKit::DK_PIDFILE_FOREIGN()) { $state = 'foreign' }
    elsif ($r == -Errno::ENOENT())                { ($state, $pid) = ('missing', 0) }
    elsif ($r == -Errno::ELOOP())  { DaemonKit::_throw('dk_pidfile_check', $r, "pid file $path: is a symbolic link (refused)") }
    elsif ($r == -Errno::EINVAL()) { DaemonKit::_throw('dk_pidfile_check', $r, "pid file $path: not a regular file") }
    else                           { DaemonKit::_fail_op('dk_pidfile_check', $r, "pid file $path") }
    return wantarray ? ($state, $pid) : $state;
}

=head2 kill

    my $pid = DaemonKit::PidFile->kill($path, 'TERM');    # name, 'SIGTERM' or number; 0 probes

Signals the process holding the PID file, only while it provably holds the
lock (pinned with a pidfd; a recycled pid is never signalled). Returns the
pid. Croaks C<pid file PATH: not running (stale pid file; nobody signalled)>
(C<ESRCH>), C<pid file PATH: No such file or directory>, C<pid file PATH:
its holder has not written a pid yet> (C<EAGAIN>), C<pid file PATH: locked
by another process, not the pid in the file (PID N, not signalled)>
(C<EBUSY>: somebody else holds a stale file's lock), C<... Operation not
permitted>.

=cut

sub kill {
    my ($class, $path, $sig) = @_;
    DaemonKit::_usage('pid file: no path given') unless defined $path && length $path;
    my $n = DaemonKit::signal_number($sig // 'TERM');
    my $pid = 0;
    my $r = DaemonKit::FFI::dk_pidfile_kill($path, $n, \$pid);
    DaemonKit::_throw('dk_pidfile_kill', $r, "pid file $path: not running (stale pid file; nobody signalled)") if $r == -Errno::ESRCH();
    DaemonKit::_throw('dk_pidfile_kill', $r, "pid file $path: its holder has not written a pid yet") if $r == -Errno::EAGAIN();
    DaemonKit::_throw('dk_pidfile_kill', $r, _foreign($path, $pid)) if $r == DaemonKit::DK_ERR_PIDFILE_FOREIGN();
    DaemonKit::_fail_op('dk_pidfile_kill', $r, "pid file $path") if $r < 0;
    return $pid;
}

# The one text for a lock held by a process other than the pid in the file.
sub _foreign {
    my ($path, $pid) = @_;
    my $who = $pid ? " (PID $pid, not signalled)" : '';
    return "pid file $path: locked by another process, not the pid in the file$who";
}

sub DESTROY {
    my ($self) = @_;
    local ($., $@, $!, $^E, $?);
    $self->close if defined $self->{h};
}

1;
