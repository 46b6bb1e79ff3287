# asproc - build, test, install.
#
#   make                 build/libasproc.a
#   make check           every Check suite, under each backend and each
#                        child-exit source this build has
#   make deps            install Check and pkg-config when missing
#   make demo            build and run the six seed examples
#   make install         PREFIX=/usr/local DESTDIR= LIBDIR=$(PREFIX)/lib
#   make bench / bench-quick / bench-deps / bench-plot   (bench/bench.mk)
#
# BACKEND=epoll|poll|kqueue forces the default backend at build time
# (BACKEND=poll builds the poll backend only). PORTABLE=1 switches off
# every Linux-only path (plain POSIX build). CC=clang works.

ifeq ($(origin CC),default)
CC = gcc
endif
AR ?= ar
PKG_CONFIG ?= pkg-config
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
DESTDIR ?=

BACKEND ?=
PORTABLE ?=

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
ALL_CFLAGS += $(CONFIG_FLAGS)
LDLIBS_LIB = -lpthread

BUILD ?= build
# Objects of different configurations never mix: each has its own folder.
CONFIG_NAME = $(CC)$(if $(BACKEND),-$(BACKEND))$(if $(PORTABLE),-portable)$(if $(SAN),-$(SAN))
OBJDIR = $(BUILD)/obj/$(subst /,_,$(CONFIG_NAME))
LIB = $(BUILD)/libasproc.a

LIB_SRC = $(wildcard src/loop/*.c) $(wildcard src/proc/*.c)
LIB_OBJ = $(patsubst src/%.c,$(OBJDIR)/%.o,$(LIB_SRC))
LIB_HDR = include/asproc.h $(wildcard src/loop/*.h) $(wildcard src/proc/*.h)

.PHONY: all lib clean deps check check-build demo install uninstall FORCE

all: lib
lib: $(LIB)

# The archive is rebuilt whenever the configuration changes (config stamp).
$(LIB): $(LIB_OBJ) $(OBJDIR)/.stamp
	@mkdir -p $(dir $@)
	rm -f $@.tmp && $(AR) rcs $@.tmp $(LIB_OBJ) && mv $@.tmp $@

$(OBJDIR)/.stamp: FORCE
	@mkdir -p $(dir $@)
	@echo '$(CONFIG_NAME) $(ALL_CFLAGS)' | cmp -s - $@ || echo '$(CONFIG_NAME) $(ALL_CFLAGS)' > $@

$(OBJDIR)/%.o: src/%.c $(LIB_HDR) $(OBJDIR)/.stamp
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Isrc/loop -Isrc/proc -c $< -o $@

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

include examples/examples.mk
include tests/tests.mk
-include bench/bench.mk

# ------------------------------------------------------------- install
asproc.pc: FORCE
	@printf 'prefix=%s\nlibdir=%s\nincludedir=%s\n\nName: asproc\nDescription: asynchronous child processes for event-driven C programs\nVersion: %s\nLibs: -L$${libdir} -lasproc\nLibs.private: -lpthread\nCflags: -I$${includedir}\n' \
	  '$(PREFIX)' '$(LIBDIR)' '$(INCLUDEDIR)' \
	  "$$(sed -n 's/^#define ASP_VERSION_STRING "\(.*\)"/\1/p' include/asproc.h)" > $(BUILD)/asproc.pc

install: lib asproc.pc
	install -d $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(LIBDIR)/pkgconfig
	install -m 644 include/asproc.h $(DESTDIR)$(INCLUDEDIR)/asproc.h
	install -m 644 $(LIB) $(DESTDIR)$(LIBDIR)/libasproc.a
	install -m 644 $(BUILD)/asproc.pc $(DESTDIR)$(LIBDIR)/pkgconfig/asproc.pc

uninstall:
	rm -f $(DESTDIR)$(INCLUDEDIR)/asproc.h $(DESTDIR)$(LIBDIR)/libasproc.a \
	      $(DESTDIR)$(LIBDIR)/pkgconfig/asproc.pc

clean:
	rm -rf $(BUILD)

FORCE:
