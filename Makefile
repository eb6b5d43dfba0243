# daemonkit — build, install and test entry points.
#
#   make            the shipped C libraries in target/lib (libdaemonkit.so, .so.0, .a) + header
#   make demo       the main job: the C example server daemonized, exercised and stopped
#   make test       every test suite (installs missing prerequisites first)
#   make install    PREFIX=/usr/local DESTDIR= : header, libraries, pkg-config file, the
#                   daemonkit command, man pages, shell completions (see "Packaging" below)
#
# The shipped libraries are the no_std core (`--no-default-features`, panic=abort), each
# crate type built on its own so that LTO applies (cargo skips LTO when an rlib is built in
# the same invocation). They live in target/lib so that later std builds cannot replace them.

PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
DESTDIR ?=
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
CAPI_TARGET := target/capi
OUT := target/lib

.PHONY: all lib demo test install uninstall clean
all: lib

lib: $(OUT)/libdaemonkit.so $(OUT)/libdaemonkit.a

# One LTO staticlib; packaging/link-capi.sh makes the .a (one object, only dk_* global) and
# the .so (version script packaging/libdaemonkit.map, soname libdaemonkit.so.0) from it.
$(OUT)/libdaemonkit.so $(OUT)/libdaemonkit.a: Cargo.toml $(wildcard src/*.rs src/*/*.rs src/*/*/*.rs) \
		packaging/link-capi.sh packaging/libdaemonkit.map
	CARGO_TARGET_DIR=$(CAPI_TARGET) cargo rustc --quiet --release --no-default-features --lib --crate-type staticlib -- -C opt-level=z
	packaging/link-capi.sh $(CAPI_TARGET)/release/libdaemonkit.a $(OUT) $(VERSION)

demo: lib
	$(MAKE) -s -C examples/c
	tests/demo.sh

test:
	tests/run-all.sh

install: lib
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR)
	install -m 0644 include/daemonkit.h $(DESTDIR)$(INCLUDEDIR)/daemonkit.h
	install -m 0755 $(OUT)/libdaemonkit.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libdaemonkit.so.$(VERSION)
	ln -sf libdaemonkit.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libdaemonkit.so.0
	ln -sf libdaemonkit.so.0 $(DESTDIR)$(LIBDIR)/libdaemonkit.so
	install -m 0644 $(OUT)/libdaemonkit.a $(DESTDIR)$(LIBDIR)/libdaemonkit.a
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' daemonkit.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/daemonkit.pc
	$(MAKE) --no-print-directory install-extra

uninstall: uninstall-extra
	rm -f $(DESTDIR)$(INCLUDEDIR)/daemonkit.h $(DESTDIR)$(LIBDIR)/libdaemonkit.so* \
	      $(DESTDIR)$(LIBDIR)/libdaemonkit.a $(DESTDIR)$(LIBDIR)/pkgconfig/daemonkit.pc

clean:
	rm -rf $(OUT) $(CAPI_TARGET)
	-$(MAKE) -s -C examples/c clean

# ---- Packaging (issue 15): the command, man pages, completions, Debian packages ----------
#
#   make command    target/release/daemonkit (what `cargo install daemonkit` builds)
#   make man        target/man/man1/daemonkit.1, target/man/man3/*.3 (generated from the
#                   header by packaging/man/gen-man3.pl, so they cannot drift from it)
#   make deb        the Debian packages in target/deb/ (packaging/debian; needs debhelper)
#
# `make install` also installs these (install-extra): BINDIR, MANDIR, the bash and zsh
# completion directories; as root with no DESTDIR it runs ldconfig, so that programs and the
# Perl binding find the new library by its soname at once.
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR ?= $(PREFIX)/share/zsh/site-functions
MAN_OUT := target/man
# Reproducible dates: dpkg-buildpackage sets SOURCE_DATE_EPOCH; else the last commit's date.
MAN_EPOCH := $(or $(SOURCE_DATE_EPOCH),$(shell git log -1 --format=%ct 2>/dev/null),$(shell date +%s))
MAN_DATE := $(shell date -u -d @$(MAN_EPOCH) +%Y-%m-%d)

.PHONY: command man deb install-extra uninstall-extra
all: command man

command: target/release/daemonkit
target/release/daemonkit: Cargo.toml Cargo.lock $(wildcard src/*.rs src/*/*.rs src/bin/daemonkit/*.rs)
	cargo build --quiet --release --locked --bin daemonkit

man: $(MAN_OUT)/man1/daemonkit.1 $(MAN_OUT)/man3/daemonkit.3
$(MAN_OUT)/man1/daemonkit.1: packaging/man/daemonkit.1.in Cargo.toml
	mkdir -p $(@D)
	sed -e 's|@VERSION@|$(VERSION)|g' -e 's|@DATE@|$(MAN_DATE)|g' $< > $@
$(MAN_OUT)/man3/daemonkit.3: include/daemonkit.h examples/c/quickstart.c packaging/man/gen-man3.pl Cargo.toml
	rm -rf $(MAN_OUT)/man3
	perl packaging/man/gen-man3.pl include/daemonkit.h examples/c/quickstart.c $(MAN_OUT)/man3 $(VERSION) $(MAN_DATE)

# (called by install: the header, libraries and pkg-config file are in place by then)
install-extra: command man
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3 \
	    $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR)
	install -m 0755 target/release/daemonkit $(DESTDIR)$(BINDIR)/daemonkit
	install -m 0644 $(MAN_OUT)/man1/daemonkit.1 $(DESTDIR)$(MANDIR)/man1/daemonkit.1
	for f in $(MAN_OUT)/man3/*.3; do \
	    if head -1 $$f | grep -q '^\.so '; then \
	        ln -sf $$(sed -n 's|^\.so man3/||p' $$f) $(DESTDIR)$(MANDIR)/man3/$${f##*/}; \
	    else install -m 0644 $$f $(DESTDIR)$(MANDIR)/man3/; fi; \
	done
	install -m 0644 packaging/completions/daemonkit.bash $(DESTDIR)$(BASHCOMPDIR)/daemonkit
	install -m 0644 packaging/completions/_daemonkit $(DESTDIR)$(ZSHCOMPDIR)/_daemonkit
	if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && command -v ldconfig >/dev/null; then ldconfig; fi

uninstall-extra:
	rm -f $(DESTDIR)$(BINDIR)/daemonkit $(DESTDIR)$(MANDIR)/man1/daemonkit.1 \
	      $(DESTDIR)$(MANDIR)/man3/daemonkit.3 $(DESTDIR)$(MANDIR)/man3/dk_*.3 \
	      $(DESTDIR)$(BASHCOMPDIR)/daemonkit $(DESTDIR)$(ZSHCOMPDIR)/_daemonkit

deb:
	packaging/build-deb.sh
