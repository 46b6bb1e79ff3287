# asproc - build, test, install.
#
#   make                 build/libasproc.a and build/asprun
#   make check           every Check suite, under each backend and each
#                        child-exit source this build has
#   make deps            install Check and pkg-config when missing
#   make demo            build and run the examples (the six of the seed,
#                        and ex6_pty on a pseudo-terminal)
#   make embed-examples  asproc inside GLib, libuv and libevent (each
#                        skipped when pkg-config lacks it; embed-deps
#                        installs them; examples/examples.mk)
#   make shared          build/libasproc.so.X.Y.Z (soname libasproc.so.SOVERSION)
#   make install         header, static and shared library, asproc.pc,
#                        asprocConfig.cmake for CMake's find_package;
#                        PREFIX=/usr/local DESTDIR= LIBDIR=$(PREFIX)/lib
#                        INCLUDEDIR=$(PREFIX)/include
#   make uninstall       removes exactly what install put there
#   make check-portable  the suites on a build with every Linux path off
#   make check-kqueue    the suites through the kqueue backend and the
#                        EVFILT_PROC source, on a user-space kqueue
#                        emulation (tests/kqueue_emu; Linux only)
#   make check-packaging exported symbols, install + pkg-config, vendoring
#   make check-compilers the library with gcc and clang in every config
#   make lint            cppcheck and clang-tidy
#   make check-all       check + all of the above + check-hardening
#                        (tests/hardening.mk); what CI runs
#   make bench / bench-quick / bench-deps / bench-plot   (bench/bench.mk)
#
# BACKEND=epoll|poll|kqueue forces the default backend at build time
# (BACKEND=poll builds the poll backend only). PORTABLE=1 switches off
# every Linux-only path (plain POSIX build). KQUEUE_EMU=1 is for the tests
# only (see check-kqueue). CC=clang works.

ifeq ($(origin CC),default)
CC = gcc
endif
AR ?= ar
PKG_CONFIG ?= pkg-config
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
DESTDIR ?=

BACKEND ?=
PORTABLE ?=
KQUEUE_EMU ?=

WARN = -Wall -Wextra -Werror -pedantic
OPT ?= -O2 -g
CFLAGS ?= $(OPT)
ALL_CFLAGS = -std=c11 $(WARN) $(CFLAGS) -Iinclude -fvisibility=hidden
CONFIG_FLAGS =
ifeq ($(BACKEND),poll)
CONFIG_FLAGS += -DASP_NO_EPOLL -DASP_NO_KQUEUE
endif
ifeq ($(BACKEND),kqueue)
CONFIG_FLAGS += -DASP_NO_EPOLL
endif
ifneq ($(PORTABLE),)
CONFIG_FLAGS += -DASP_PORTABLE
endif
ifneq ($(KQUEUE_EMU),)
# Test-only: the stand-in <sys/event.h>; the emulation is linked into the
# test binary (see the portability section below).
CONFIG_FLAGS += -DASP_FAKE_KQUEUE -Itests/kqueue_emu
endif
ALL_CFLAGS += $(CONFIG_FLAGS)
LDLIBS_LIB = -lpthread

BUILD ?= build
# Objects of different configurations never mix: each has its own folder.
CONFIG_NAME = $(CC)$(if $(BACKEND),-$(BACKEND))$(if $(PORTABLE),-portable)$(if $(KQUEUE_EMU),-kqemu)$(if $(SAN),-$(SAN))
OBJDIR = $(BUILD)/obj/$(subst /,_,$(CONFIG_NAME))
LIB = $(BUILD)/libasproc.a

# One folder per room: the reactor, the streams, the processes.
LIB_SRC = $(wildcard src/loop/*.c) $(wildcard src/stream/*.c) \
          $(wildcard src/proc/*.c)
LIB_OBJ = $(patsubst src/%.c,$(OBJDIR)/%.o,$(LIB_SRC))
LOOP_OBJ = $(patsubst src/%.c,$(OBJDIR)/%.o,$(wildcard src/loop/*.c))
LIB_HDR = include/asproc.h $(wildcard src/*/*.h)

.PHONY: all lib shared clean deps check check-build demo install uninstall FORCE \
        asprun

all: lib asprun
lib: $(LIB)

# The command-line tool (tools/asprun*.c), on the static library.
ASPRUN = $(BUILD)/asprun
asprun: $(ASPRUN)
ASPRUN_SRC = tools/asprun.c tools/asprun_pty.c
$(ASPRUN): $(ASPRUN_SRC) tools/asprun.h include/asproc.h $(LIB)
	@mkdir -p $(dir $@)
	$(CC) -std=c11 $(WARN) $(CFLAGS) -Iinclude $(ASPRUN_SRC) $(LIB) -lpthread -o $@

# The archive is rebuilt whenever the configuration changes (config stamp).
$(LIB): $(LIB_OBJ) $(OBJDIR)/.stamp
	@mkdir -p $(dir $@)
	rm -f $@.tmp && $(AR) rcs $@.tmp $(LIB_OBJ) && mv $@.tmp $@

$(OBJDIR)/.stamp: FORCE
	@mkdir -p $(dir $@)
	@echo '$(CONFIG_NAME) $(ALL_CFLAGS)' | cmp -s - $@ || echo '$(CONFIG_NAME) $(ALL_CFLAGS)' > $@

$(OBJDIR)/%.o: src/%.c $(LIB_HDR) $(OBJDIR)/.stamp
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

# ---------------------------------------------------------------- deps
# Installs Check and pkg-config when missing (apt-get on Debian/Ubuntu;
# elsewhere it says what to install).
deps:
	@if command -v $(PKG_CONFIG) >/dev/null 2>&1 && $(PKG_CONFIG) --exists check; then \
	  echo "deps: check and pkg-config present"; \
	elif command -v apt-get >/dev/null 2>&1; then \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq check pkg-config; \
	else \
	  echo "deps: install Check (>= 0.10) and pkg-config with your package manager" \
	       "(brew install check pkg-config; pkg install check pkgconf; dnf install check-devel pkgconf)"; \
	  exit 1; \
	fi

# Optional, so that a vendored copy of just Makefile, include/ and src/
# still builds the library (see tests/packaging/vendor.sh).
-include examples/examples.mk
-include tests/tests.mk
-include tests/cgroup.mk
-include bench/bench.mk
-include tests/hardening.mk

# -------------------------------------------------------------- shared
# libasproc.so.X.Y.Z with soname libasproc.so.SOVERSION. While the major
# version is 0 every minor release may change the ABI, so the soname
# carries major.minor (libasproc.so.0.1); from 1.0 on, the major alone.
# Only ASP_API symbols are exported: everything is compiled with
# -fvisibility=hidden and the header marks the public functions.
VERSION := $(shell sed -n 's/^\#define ASP_VERSION_STRING "\(.*\)"/\1/p' include/asproc.h)
VERSION_MAJOR := $(word 1,$(subst ., ,$(VERSION)))
VERSION_MINOR := $(word 2,$(subst ., ,$(VERSION)))
SOVERSION := $(if $(filter 0,$(VERSION_MAJOR)),0.$(VERSION_MINOR),$(VERSION_MAJOR))
SONAME = libasproc.so.$(SOVERSION)
SHLIB = $(BUILD)/libasproc.so.$(VERSION)
PIC_OBJDIR = $(OBJDIR)-pic
PIC_OBJ = $(patsubst src/%.c,$(PIC_OBJDIR)/%.o,$(LIB_SRC))

shared: $(SHLIB)

$(PIC_OBJDIR)/%.o: src/%.c $(LIB_HDR) $(OBJDIR)/.stamp
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -fPIC -c $< -o $@

$(SHLIB): $(PIC_OBJ) $(OBJDIR)/.stamp
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,-soname,$(SONAME) -Wl,-z,defs -Wl,--as-needed \
	  $(LDFLAGS) -o $@ $(PIC_OBJ) $(LDLIBS_LIB)
	ln -sf $(notdir $@) $(BUILD)/$(SONAME)
	ln -sf $(SONAME) $(BUILD)/libasproc.so

# ------------------------------------------------------------- install
# The .pc file is generated: prefix, libdir and includedir are the ones of
# this install (pkg-config's PKG_CONFIG_SYSROOT_DIR handles DESTDIR
# staging). Libs.private lists what a static link needs.
PC_FILE = $(BUILD)/asproc.pc

$(PC_FILE): include/asproc.h $(OBJDIR)/.stamp FORCE
	@mkdir -p $(dir $@)
	@printf '%s\n' \
	  'prefix=$(PREFIX)' \
	  'libdir=$(LIBDIR)' \
	  'includedir=$(INCLUDEDIR)' \
	  '' \
	  'Name: asproc' \
	  'Description: asynchronous child processes for event-driven C programs' \
	  'Version: $(VERSION)' \
	  'Libs: -L$${libdir} -lasproc' \
	  'Libs.private: -lpthread' \
	  'Cflags: -I$${includedir}' > $@.tmp
	@cmp -s $@.tmp $@ 2>/dev/null && rm -f $@.tmp || mv $@.tmp $@

# CMake package files for find_package(asproc), from the templates in
# cmake/: the imported targets asproc::asproc (+ _static, _shared) and the
# version rule (same minor while 0.x, same major from 1.0). The config
# file finds the library and header relative to itself when it is not
# where it was installed (a DESTDIR stage), so LIBDIR and INCLUDEDIR of
# this install are written into it. The version file refuses a consumer
# of another pointer size, as CMake's own version files do.
CMAKE_PKG_DIR = $(LIBDIR)/cmake/asproc
CMAKE_FILES = $(BUILD)/cmake/asprocConfig.cmake $(BUILD)/cmake/asprocConfigVersion.cmake
SIZEOF_VOID_P = $(shell $(CC) $(CFLAGS) -dM -E -x c /dev/null 2>/dev/null | \
                  sed -n 's/^\#define __SIZEOF_POINTER__ //p')

$(BUILD)/cmake/%.cmake: cmake/%.cmake.in include/asproc.h $(OBJDIR)/.stamp FORCE
	@mkdir -p $(dir $@)
	@sed -e 's|@VERSION@|$(VERSION)|g' -e 's|@SONAME@|$(SONAME)|g' \
	     -e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' \
	     -e 's|@SIZEOF_VOID_P@|$(SIZEOF_VOID_P)|g' $< > $@.tmp
	@cmp -s $@.tmp $@ 2>/dev/null && rm -f $@.tmp || mv $@.tmp $@

install: $(LIB) $(SHLIB) $(PC_FILE) $(CMAKE_FILES) $(ASPRUN)
	install -d $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(LIBDIR)/pkgconfig \
	  $(DESTDIR)$(CMAKE_PKG_DIR) $(DESTDIR)$(BINDIR)
	install -m 755 $(ASPRUN) $(DESTDIR)$(BINDIR)/asprun
	install -m 644 include/asproc.h $(DESTDIR)$(INCLUDEDIR)/asproc.h
	install -m 644 $(LIB) $(DESTDIR)$(LIBDIR)/libasproc.a
	install -m 755 $(SHLIB) $(DESTDIR)$(LIBDIR)/libasproc.so.$(VERSION)
	ln -sf libasproc.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libasproc.so
	install -m 644 $(PC_FILE) $(DESTDIR)$(LIBDIR)/pkgconfig/asproc.pc
	install -m 644 $(CMAKE_FILES) $(DESTDIR)$(CMAKE_PKG_DIR)/

# The folder cmake/asproc is asproc's own: removed when empty.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/asprun $(DESTDIR)$(INCLUDEDIR)/asproc.h \
	      $(DESTDIR)$(LIBDIR)/libasproc.a \
	      $(DESTDIR)$(LIBDIR)/libasproc.so.$(VERSION) \
	      $(DESTDIR)$(LIBDIR)/$(SONAME) \
	      $(DESTDIR)$(LIBDIR)/libasproc.so \
	      $(DESTDIR)$(LIBDIR)/pkgconfig/asproc.pc \
	      $(DESTDIR)$(CMAKE_PKG_DIR)/asprocConfig.cmake \
	      $(DESTDIR)$(CMAKE_PKG_DIR)/asprocConfigVersion.cmake
	@rmdir $(DESTDIR)$(CMAKE_PKG_DIR) 2>/dev/null || true

# --------------------------------------------------------- portability
# Each configuration builds in its own BUILD folder, so the runs never
# share an archive and may follow each other in any order.
#
# check-portable: every Linux path off (-DASP_PORTABLE): poll backend,
# pipe notifier, self-pipe source, vfork, waitid(P_PID), kill(pid).
#
# check-kqueue: -DASP_PORTABLE plus the kqueue backend compiled against
# the stand-in <sys/event.h> and linked with the user-space emulation in
# tests/kqueue_emu (close() is wrapped so that closing an fd drops its
# knotes, as the kernel does). The runs are the kqueue rows of the
# runner's matrix: every suite with the EVFILT_PROC source, the process
# suites again with the self-pipe source.
KQEMU_OBJ = $(TEST_DIR)/kqueue_emu.o

ifneq ($(KQUEUE_EMU),)
# Everything linked with this configuration's archive (the test binary and
# the examples it runs) gets the emulation and the close() wrapper.
KQEMU_LINK = $(KQEMU_OBJ) -Wl,--wrap=close,--wrap=fcntl,--wrap=dup,--wrap=dup2
$(KQEMU_OBJ): tests/kqueue_emu/kqueue_emu.c tests/kqueue_emu/sys/event.h
	@mkdir -p $(dir $@)
	$(CC) -std=c11 $(WARN) $(CFLAGS) -Itests/kqueue_emu -c $< -o $@
$(TEST_BIN) $(LOOP_TEST_BIN) $(TEST_EXAMPLES): $(KQEMU_OBJ)
$(TEST_BIN) $(LOOP_TEST_BIN): CHECK_LIBS += $(KQEMU_LINK)
$(TEST_DIR)/examples/%: LIB += $(KQEMU_LINK)
$(ASPRUN): $(KQEMU_OBJ)
$(ASPRUN): LIB += $(KQEMU_LINK)
# The emulation's own test: its kqueue(2) semantics, checked first.
KQEMU_SELFTEST = $(TEST_DIR)/kqueue_emu_selftest
$(KQEMU_SELFTEST): tests/kqueue_emu/emu_selftest.c $(KQEMU_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -std=c11 $(WARN) $(CFLAGS) -Itests/kqueue_emu $< $(KQEMU_LINK) -lpthread -o $@
endif

.PHONY: check-portable check-kqueue check-kqueue-run check-compilers \
        check-packaging check-all lint lint-cppcheck lint-clang-tidy deps-lint \
        format lint-format

check-portable:
	$(MAKE) --no-print-directory PORTABLE=1 BUILD=$(BUILD)/portable check

check-kqueue:
	$(MAKE) --no-print-directory PORTABLE=1 KQUEUE_EMU=1 \
	  BUILD=$(BUILD)/kqemu check-kqueue-run

# The macOS flavour (a zombie cannot be watched: ESRCH) reruns the suites
# that race a child's exit against the start of its watch, with every
# watch delayed so that children that exit at once lose that race.
KQEMU_MACOS_SUITES = spawn wait kill loop

check-kqueue-run: check-build $(KQEMU_SELFTEST)
	@$(KQEMU_SELFTEST)
	@ASP_KQEMU_FLAVOR=macos $(KQEMU_SELFTEST)
	@fail=0; \
	sh tests/matrix.sh -q -n check-kqueue -l 'emulated kqueue: ' -b kqueue \
	  $(TEST_BIN) $(SUITES) || { [ $$? = 2 ] && exit 1; fail=1; }; \
	echo "== emulated kqueue, macOS flavour: backend=kqueue source=kqueue suites=$(or $(SUITES),$(KQEMU_MACOS_SUITES))"; \
	ASP_KQEMU_FLAVOR=macos ASP_KQEMU_WATCH_DELAY_MS=5 \
	  ASP_BACKEND=kqueue ASP_CHILD_SOURCE=kqueue \
	  $(TEST_BIN) $(or $(SUITES),$(KQEMU_MACOS_SUITES)) || fail=1; \
	if [ $$fail = 0 ]; then echo "check-kqueue: all runs passed"; else echo "check-kqueue: FAILURES above"; fi; \
	exit $$fail

# The library (and the test binary where Check is there) with both
# compilers and -Werror in every configuration.
COMPILER_CONFIGS = default:: portable:PORTABLE=1: poll:BACKEND=poll: \
                   kqemu:PORTABLE=1:KQUEUE_EMU=1
check-compilers:
	@set -e; for cc in gcc clang; do \
	  for c in $(COMPILER_CONFIGS); do \
	    name=$${c%%:*}; rest=$${c#*:}; v1=$${rest%%:*}; v2=$${rest#*:}; \
	    echo "== $$cc $$name"; \
	    $(MAKE) --no-print-directory -s CC=$$cc $$v1 $$v2 \
	      BUILD=$(BUILD)/cc-$$cc-$$name lib check-build; \
	  done; \
	  $(MAKE) --no-print-directory -s CC=$$cc BUILD=$(BUILD)/cc-$$cc-default shared; \
	done; echo "check-compilers: gcc and clang clean in every config"

# ----------------------------------------------------------- packaging
# tests/packaging/*.sh: exported symbols (nm), install into a DESTDIR and
# build against it with pkg-config, vendoring as third_party/asproc, and
# CMake projects using find_package(asproc) and add_subdirectory (needs
# cmake: `apt-get install cmake`).
check-packaging: lib shared
	@sh tests/packaging/symbols.sh $(LIB) $(SHLIB) include/asproc.h
	@sh tests/packaging/install.sh "$(CC)" "$(MAKE)"
	@sh tests/packaging/vendor.sh "$(CC)" "$(MAKE)"
	@sh tests/packaging/cmake.sh "$(CC)" "$(MAKE)"

# ---------------------------------------------------------------- lint
# cppcheck and clang-tidy over the library in two configurations: the
# default (Linux paths on) and portable with the kqueue backend against
# the stand-in header (plus the emulation itself). Both must be silent.
# Checks turned off, and why:
#   bugprone-easily-swappable-parameters  style, not a defect
#   bugprone-reserved-identifier, cert-dcl37-c, cert-dcl51-cpp
#                          _GNU_SOURCE and the linker's __wrap_/__real_
#   misc-include-cleaner   not in every clang-tidy version
#   bugprone-not-null-terminated-result   flags memcpy of a string segment
#                          that is terminated right after (env.c)
#   clang-analyzer-security.insecureAPI.DeprecatedOrUnsafeBufferHandling
#                          wants memcpy_s (Annex K), which glibc lacks
#   clang-analyzer-security.insecureAPI.vfork, clang-analyzer-unix.Vfork
#                          the portable spawn is vfork by design; the child
#                          makes only async-signal-safe calls (child.c)
#   bugprone-sizeof-expression   flags the allocation idiom sizeof *t for
#                          t an array of pointers (io.c); clang-tidy 14
#                          has no WarnOnSizeOfPointerToAggregate option yet
CPPCHECK ?= cppcheck
CLANG_TIDY ?= clang-tidy
CPPCHECK_FLAGS = --std=c11 --enable=warning,performance,portability \
  --error-exitcode=1 --inline-suppr --quiet -Iinclude \
  --suppress=missingIncludeSystem -DATOMIC_INT_LOCK_FREE=2 -DATOMIC_POINTER_LOCK_FREE=2
TIDY_CHECKS = -*,clang-analyzer-*,bugprone-*,cert-*,misc-*,performance-*,portability-*,\
-bugprone-easily-swappable-parameters,-bugprone-reserved-identifier,\
-cert-dcl37-c,-cert-dcl51-cpp,-misc-include-cleaner,\
-bugprone-not-null-terminated-result,\
-clang-analyzer-security.insecureAPI.DeprecatedOrUnsafeBufferHandling,\
-clang-analyzer-security.insecureAPI.vfork,-clang-analyzer-unix.Vfork,\
-bugprone-sizeof-expression
TIDY_FLAGS = -std=c11 -Iinclude -D_GNU_SOURCE

lint: lint-cppcheck lint-clang-tidy lint-format

# The C layout (.clang-format; the public header is laid out by hand).
CLANG_FORMAT ?= clang-format
FORMAT_FILES = $(wildcard src/*/*.[ch] tools/*.[ch] tests/*.[ch] \
                 tests/*/*.[ch] bench/*.[ch] examples/*.[ch])

format:
	$(CLANG_FORMAT) -i $(FORMAT_FILES)

# Another clang-format major version lays some constructs out differently,
# so the check holds the files to version 14's output only (Debian 12's);
# with another version it says so and passes.
lint-format:
	@v=$$($(CLANG_FORMAT) --version | sed -n 's/.*version \([0-9]*\).*/\1/p'); \
	if [ "$$v" != 14 ]; then \
	  echo "lint-format: clang-format $$v is not 14, the layout's version: not checked"; \
	else \
	  $(CLANG_FORMAT) --dry-run -Werror $(FORMAT_FILES) && \
	  echo "lint-format: every file follows .clang-format"; \
	fi

# Installs cppcheck, clang-tidy and clang-format when missing (apt-get),
# like `make deps`.
deps-lint:
	@if command -v $(CPPCHECK) >/dev/null 2>&1 && command -v $(CLANG_TIDY) >/dev/null 2>&1 && \
	    command -v $(CLANG_FORMAT) >/dev/null 2>&1; then \
	  echo "deps-lint: cppcheck, clang-tidy and clang-format present"; \
	elif command -v apt-get >/dev/null 2>&1; then \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq cppcheck clang-tidy clang-format; \
	else \
	  echo "deps-lint: install cppcheck, clang-tidy and clang-format with your package manager"; exit 1; \
	fi

lint-cppcheck:
	$(CPPCHECK) $(CPPCHECK_FLAGS) -D__linux__ -D__GNUC__ $(LIB_SRC)
	$(CPPCHECK) $(CPPCHECK_FLAGS) -D__linux__ -D__GNUC__ -DASP_PORTABLE \
	  -DASP_FAKE_KQUEUE -Itests/kqueue_emu $(LIB_SRC) tests/kqueue_emu/kqueue_emu.c

lint-clang-tidy:
	$(CLANG_TIDY) --quiet --warnings-as-errors='*' -checks='$(TIDY_CHECKS)' \
	  $(LIB_SRC) -- $(TIDY_FLAGS)
	$(CLANG_TIDY) --quiet --warnings-as-errors='*' -checks='$(TIDY_CHECKS)' \
	  $(LIB_SRC) tests/kqueue_emu/kqueue_emu.c -- $(TIDY_FLAGS) \
	  -DASP_PORTABLE -DASP_FAKE_KQUEUE -Itests/kqueue_emu

# ------------------------------------------------------------ check-all
# Everything CI runs, in order: about 25 minutes on 2 cores (most of it
# check-hardening's ASan and valgrind runs).
check-all: check check-portable check-kqueue check-packaging check-compilers lint \
           check-hardening

clean:
	rm -rf $(BUILD)

FORCE:
