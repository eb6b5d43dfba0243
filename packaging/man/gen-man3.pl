#!/usr/bin/perl
# Generates the C API manual pages from include/daemonkit.h (its /** ... */ documentation is
# cbindgen's copy of src/capi/'s doc comments), so the pages cannot drift from the header:
#
#   daemonkit.3        overview: conventions, startup order, the areas, linking, the quick
#                      start (examples/c/quickstart.c)
#   dk_<area>.3        one page per API area: synopsis, every function's documentation,
#                      the area's constants and types
#   dk_<function>.3    one `.so` link per function to its area's page (dh_installman and
#                      `make install` turn them into symlinks)
#
# usage: gen-man3.pl HEADER QUICKSTART.c OUTDIR VERSION DATE
# Fails when a function, constant or type of the header belongs to no area.
use strict;
use warnings;

my ($header, $quickstart, $out, $version, $date) = @ARGV;
die "usage: $0 HEADER QUICKSTART.c OUTDIR VERSION DATE\n" unless defined $date;

# area => [title, description, function regex, constant/type regex]
my @AREAS = (
    [version    => 'library version and error text',
        'The version of the loaded library and a description of any returned error code.',
        qr/^dk_(version|strerror)$/, qr/^DK_VERSION/],
    [daemonize  => 'daemonize with readiness',
        'Detach from the terminal following daemon(7), with a readiness channel back to the '
      . 'launching process: it exits 0 only once the daemon calls dk_ready(), or prints the '
      . "daemon's message and exits with its code.",
        qr/^dk_(daemonize|ready|fail)$/, qr/^DK_(DAEMON|ROLE)_/],
    [pidfile    => 'locked PID files',
        'PID files with BSD pidfile(3) semantics, hardened: locked for the daemon\'s whole life, '
      . 'liveness from the lock, never from kill(pid, 0) alone.',
        qr/^dk_pidfile/, qr/^(DK_PIDFILE_|dk_pidfile$)/],
    [privileges => 'drop root privileges for good',
        'Resolve users and groups and drop privileges in the safe order (supplementary groups, '
      . 'gid, uid), then verify the switch cannot be undone.',
        qr/^dk_(privileges_drop|privileges_drop_caps|cap_from_name|user_lookup|group_lookup)$/, qr/^DK_(ERR_|PRIVILEGES_)/],
    [rlimit     => 'resource limits',
        'Read and set resource limits; raise the open-file limit; disable core dumps.',
        qr/^dk_rlimit_/, qr/^DK_RLIM(IT)?_/],
    [fd         => 'file descriptors and fd passing',
        'Close-on-exec, closing every fd above a floor, and passing fds over Unix sockets '
      . '(SCM_RIGHTS).',
        qr/^dk_fd_/, qr/^$/],
    [log        => 'log files',
        'Redirect stdout and stderr to a log file, and reopen it after log rotation.',
        qr/^dk_log_/, qr/^DK_LOG_/],
    [signal     => 'signals as a file descriptor',
        'A self-pipe whose read end any event loop can watch; the handler only records the '
      . 'signal. Resets for children and SIGPIPE.',
        qr/^dk_signal_/, qr/^DK_SIGNAL_/],
    [listen     => 'listeners and systemd socket activation',
        'Bind TCP and Unix listeners, inspect sockets, and take the listeners systemd (or '
      . 'daemonkit(1)) passes in LISTEN_FDS.',
        qr/^dk_(listen_|socket_)/, qr/^DK_LISTEN_/],
    [notify     => 'sd_notify and the watchdog',
        'Send state changes to $NOTIFY_SOCKET (abstract sockets included), read the '
      . 'watchdog interval, and speak s6\'s readiness protocol (a newline on the '
      . 'notification fd).',
        qr/^dk_(notify|watchdog)/, qr/^DK_NOTIFY_/],
    [reexec     => 're-exec and zero-downtime upgrades',
        'Re-execute in place, or start a new generation with the listeners and the locked PID '
      . 'file handed over, rolled back when it fails.',
        qr/^dk_(reexec|upgrade)$/, qr/^DK_(REEXEC|UPGRADE)_/],
    [supervisor => 'prefork supervision',
        'A master that runs N workers: respawn with a crash-loop throttle, rolling restarts on '
      . 'HUP, TTIN/TTOU, graceful stop, upgrades.',
        qr/^dk_(supervisor|event_describe)/, qr/^(DK_(EVENT|SUPERVISOR)_|dk_supervisor$|dk_(worker|hook|event|stdio)_fn$)/],
);

open(my $fh, '<', $header) or die "$header: $!\n";
my $text = do { local $/; <$fh> };
close $fh;

# Every documented item: a /** */ block and the declaration after it.
my (@items, $intro);
($intro) = $text =~ m{\A/\*\s*(.*?)\*/}s;
while ($text =~ m{/\*\*\n(.*?)\*/\n(.*?)(?=\n\n|\n/\*\*|\n#ifdef|\n#endif|\z)}sg) {
    my ($doc, $decl) = ($1, $2);
    $doc =~ s/^ \* ?//mg;
    $doc =~ s/\s+\z//;
    $decl =~ s/\s+\z//;
    my ($kind, $name);
    if ($decl =~ /^#define (\w+)/) { ($kind, $name) = ('constant', $1) }
    elsif ($decl =~ /^typedef struct (\w+) \w+;/) { ($kind, $name) = ('type', $1) }
    elsif ($decl =~ /^typedef .*\(\*(\w+)\)/s) { ($kind, $name) = ('type', $1) }
    elsif ($decl =~ /\b(dk_\w+)\(/) { ($kind, $name) = ('function', $1) }
    else { die "gen-man3: cannot classify the declaration after a comment:\n$decl\n" }
    push @items, { kind => $kind, name => $name, doc => $doc, decl => $decl };
}
die "gen-man3: no functions found in $header\n" unless grep { $_->{kind} eq 'function' } @items;

my %area_of;
for my $it (@items) {
    my $re_i = $it->{kind} eq 'function' ? 2 : 3;
    my @hit = grep { $it->{name} =~ $_->[$re_i + 1] } @AREAS;
    die "gen-man3: $it->{kind} $it->{name} belongs to no area (add it to \@AREAS)\n" unless @hit;
    die "gen-man3: $it->{name} matches several areas\n" if @hit > 1;
    push @{ $area_of{ $hit[0][0] } }, $it;
}

# Roff from the header's Markdown-ish text: `code` in bold, "- " lists, paragraphs.
sub esc {
    my ($s) = @_;
    $s =~ s/\\/\\e/g;
    $s =~ s/-/\\-/g;
    return $s;
}
sub inline {
    my ($s) = @_;
    my @parts = split /(`[^`]*`)/, $s;
    return join '', map { /^`(.*)`$/ ? '\fB' . esc($1) . '\fR' : esc($_) } @parts;
}
sub roff_text {
    my ($doc) = @_;
    my @out;
    for my $para (split /\n\s*\n/, $doc) {
        my @lines = split /\n/, $para;
        my $buf = '';
        # (a text line starting with . or ' would be read as a request)
        my $flush = sub { push @out, inline($buf) =~ s/^([.'])/\\&$1/r if length $buf; $buf = '' };
        push @out, '.PP';
        for my $l (@lines) {
            if ($l =~ /^- (.*)/) { $flush->(); push @out, '.IP \(bu 2'; $buf = $1 }
            elsif ($l =~ /^  (\S.*)/ && length $buf) { $buf .= " $1" }
            else { $buf .= (length $buf ? ' ' : '') . $l }
        }
        $flush->();
    }
    return join("\n", @out);
}
sub th {
    my ($name) = @_;
    # no hyphenation or justification: the text is full of identifiers
    return sprintf qq{.TH %s 3 "%s" "daemonkit %s" "daemonkit Library Functions"\n.nh\n.ad l\n}, uc(esc($name)), $date, $version;
}
sub synopsis_decl {
    my ($decl) = @_;
    $decl =~ s/\s+/ /g;
    $decl =~ s/\( /(/g;
    return esc($decl);
}
my $LIBRARY = ".SH LIBRARY\ndaemonkit (\\fIlibdaemonkit\\fR, \\fI\\-ldaemonkit\\fR; \\fBpkg\\-config \\-\\-cflags \\-\\-libs daemonkit\\fR)\n";

mkdir $out unless -d $out;
my @written;
sub write_page {
    my ($file, $content) = @_;
    open(my $o, '>', "$out/$file") or die "$out/$file: $!\n";
    print $o $content;
    close $o;
    push @written, $file;
}

my @area_pages;
for my $a (@AREAS) {
    my ($area, $title, $desc) = @$a;
    my @its = @{ $area_of{$area} || [] };
    my @fns = grep { $_->{kind} eq 'function' } @its;
    next unless @fns;
    my $page = "dk_$area";
    push @area_pages, [$page, $title, \@fns];
    my $s = th($page);
    $s .= ".SH NAME\n" . join(', ', map { esc($_->{name}) } @fns) . " \\- $title\n";
    $s .= $LIBRARY;
    $s .= ".SH SYNOPSIS\n.nf\n.B #include <daemonkit.h>\n.PP\n";
    $s .= join("\n", map { synopsis_decl($_->{decl}) } grep { $_->{kind} eq 'type' } @its) . "\n.PP\n"
        if grep { $_->{kind} eq 'type' } @its;
    $s .= join("\n", map { synopsis_decl($_->{decl}) } @fns) . "\n.fi\n";
    $s .= ".SH DESCRIPTION\n" . inline($desc) . "\n";
    for my $f (@fns) {
        $s .= ".SS " . esc($f->{name}) . "()\n" . roff_text($f->{doc}) . "\n";
    }
    if (my @c = grep { $_->{kind} eq 'constant' } @its) {
        $s .= ".SH CONSTANTS\n";
        for my $c (@c) {
            my ($value) = $c->{decl} =~ /^#define \w+ (.*)$/;
            $s .= ".TP\n.BR " . esc($c->{name}) . " \" (" . esc($value) . ")\"\n" . roff_text($c->{doc}) =~ s/\A\.PP\n//r . "\n";
        }
    }
    if (my @t = grep { $_->{kind} eq 'type' } @its) {
        $s .= ".SH TYPES\n";
        $s .= ".TP\n.B " . esc($_->{name}) . "\n" . (roff_text($_->{doc}) =~ s/\A\.PP\n//r) . "\n" for @t;
    }
    $s .= ".SH RETURN VALUE\nUnless the description says otherwise, each function returns a value "
        . ">= 0 on success and a negative errno on failure (systemd's convention); "
        . "\\fBdk_strerror\\fR(3) describes it.\n";
    $s .= ".SH SEE ALSO\n\\fBdaemonkit\\fR(3), \\fBdaemonkit\\fR(1)\n";
    write_page("$page.3", $s);
    for my $f (@fns) {
        write_page("$f->{name}.3", ".so man3/$page.3\n") unless $f->{name} eq $page;
    }
}

# The overview page.
my $qs = do { open(my $q, '<', $quickstart) or die "$quickstart: $!\n"; local $/; <$q> };
$qs =~ s/\\/\\e/g;
$qs =~ s/^([.'])/\\&$1/mg;
(my $summary = $intro // '') =~ s/^ \* ?//mg;
my $o = th('daemonkit');
$o .= ".SH NAME\ndaemonkit \\- process plumbing for long\\-running servers (C API)\n";
$o .= $LIBRARY;
$o .= ".SH SYNOPSIS\n.nf\n.B #include <daemonkit.h>\n.PP\n.B cc app.c \$(pkg\\-config \\-\\-cflags \\-\\-libs daemonkit)\n.fi\n";
$o .= ".SH DESCRIPTION\nlibdaemonkit does the process plumbing every long\\-running server needs: daemonize "
    . "with readiness, PID files that cannot lie, privilege drop that cannot be undone, signals "
    . "as a file descriptor, resource limits, prefork supervision, systemd socket activation and "
    . "notification, and zero\\-downtime restarts. It is written in Rust and exported through this "
    . "stable C ABI; it depends on libc only.\n";
$o .= ".PP\nThe canonical startup order is: parse the configuration, open and lock the PID file, "
    . "bind the listeners, daemonize (the readiness channel kept), write the pid, drop privileges, "
    . "set up signals, start the application or the workers, then call \\fBdk_ready\\fR(3); the "
    . "launching process exits 0 only then. Locking and binding before the fork let \"already "
    . "running\" and \"address in use\" reach the terminal.\n";
$o .= ".SS Conventions\n.IP \\(bu 2\nEvery function returns a negative errno on failure and a value "
    . ">= 0 on success unless its page says otherwise; each page lists the errnos and what they mean.\n"
    . ".IP \\(bu 2\nNULL where a pointer is required, a bad fd or an over\\-long path give "
    . "\\fB\\-EINVAL\\fR, \\fB\\-EBADF\\fR or \\fB\\-ENAMETOOLONG\\fR, never a crash; unknown flag bits "
    . "give \\fB\\-EINVAL\\fR.\n"
    . ".IP \\(bu 2\nOpaque handles are \\fBdk_\\fR\\fIthing\\fR with \\fBdk_\\fR\\fIthing\\fR\\fB_\\fR\\fIverb\\fR "
    . "functions; outputs come last; a buffer is followed by its \\fBsize_t\\fR length.\n"
    . ".IP \\(bu 2\nEvery file descriptor the library creates is close\\-on\\-exec unless the caller "
    . "asks to pass it on.\n"
    . ".IP \\(bu 2\nThe header compiles as C99 and as C++. The library's symbols are versioned "
    . "(\\fBDAEMONKIT_0\\fR); its soname is \\fIlibdaemonkit.so.0\\fR.\n";
$o .= ".SS Areas\n";
for my $p (@area_pages) {
    my ($page, $title, $fns) = @$p;
    $o .= ".TP\n\\fB$page\\fR(3) \\- " . esc($title) . "\n" . join(', ', map { esc($_->{name}) } @$fns) . "\n";
}
$o .= ".SH EXAMPLE\nA daemon with a PID file, readiness and signals as an fd "
    . "(\\fIexamples/c/quickstart.c\\fR in the source):\n.PP\n.in +4n\n.EX\n$qs.EE\n.in\n";
$o .= ".SH FILES\n.TP\n.I daemonkit.h\nthe header, with every function's documentation\n"
    . ".TP\n.I libdaemonkit.so.0\nthe shared library (soname)\n.TP\n.I libdaemonkit.a\n"
    . "the static library (link also \\-lc \\-lm \\-lrt \\-lpthread, or use \\fBpkg\\-config \\-\\-static\\fR)\n"
    . ".TP\n.I daemonkit.pc\nthe pkg\\-config file\n";
$o .= ".SH SEE ALSO\n" . join(', ', map { "\\fB$_->[0]\\fR(3)" } @area_pages)
    . ", \\fBdaemonkit\\fR(1), \\fBdaemon\\fR(7), \\fBsd_notify\\fR(3), \\fBsd_listen_fds\\fR(3)\n";
write_page('daemonkit.3', $o);

printf "gen-man3: %d pages, %d links in %s\n", 1 + @area_pages, @written - 1 - @area_pages, $out;
