# daemonkit — build, install and test entry points.
#
#   make            the shipped C libraries in target/lib (libdaemonkit.so, .so.0, .a) + header
#   make demo       the main job: the C example server daemonized, exercised and stopped
#   make test       every test suite (installs missing prerequisites first)
#   make install    PREFIX=/usr/local DESTDIR= : header, libraries, pkg-config file
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
$(OUT)/libdaemonkit.so $(OUT)/libdaemonkit.a: Cargo.toml build.rs $(wildcard src/*.rs src/*/*.rs) \
		packaging/link-capi.sh packaging/libdaemonkit.map
	CARGO_TARGET_DIR=$(CAPI_TARGET) cargo rustc --quiet --release --no-default-features --lib --crate-type staticlib
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

uninstall:
	rm -f $(DESTDIR)$(INCLUDEDIR)/daemonkit.h $(DESTDIR)$(LIBDIR)/libdaemonkit.so* \
	      $(DESTDIR)$(LIBDIR)/libdaemonkit.a $(DESTDIR)$(LIBDIR)/pkgconfig/daemonkit.pc

clean:
	rm -rf $(OUT) $(CAPI_TARGET)
	-$(MAKE) -s -C examples/c clean
