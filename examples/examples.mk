# examples/examples.mk - the examples (included by the top-level Makefile).
#
#   make demo            builds and runs the seed's six examples and ex6_pty
#                        (a program on a pseudo-terminal), each with a
#                        heading; needs nothing but the library
#   make embed-examples  builds and runs examples/embed_*.c: asproc inside
#                        GLib's, libuv's and libevent's loops, each once with
#                        the default backend and once with ASP_BACKEND=poll.
#                        One whose library pkg-config does not find is
#                        skipped with a SKIP line (not a failure);
#                        `make embed-deps` installs the three
#   make embed-deps      apt-get install libglib2.0-dev libuv1-dev
#                        libevent-dev pkg-config when missing

EXAMPLES = $(sort $(basename $(notdir $(wildcard examples/ex*.c))))
EXAMPLE_DIR = $(BUILD)/examples
EXAMPLE_BINS = $(addprefix $(EXAMPLE_DIR)/,$(EXAMPLES))

.PHONY: demo examples embed-examples embed-deps

$(EXAMPLE_DIR)/%: examples/%.c $(LIB) include/asproc.h
	@mkdir -p $(dir $@)
	$(CC) -std=c11 $(WARN) $(CFLAGS) -Iinclude $< $(LIB) -lpthread -o $@

examples: $(EXAMPLE_BINS)

demo: examples
	@for e in $(EXAMPLES); do \
	  echo; echo "=== $$e ==="; \
	  ./$(EXAMPLE_DIR)/$$e || exit 1; \
	done

# name:pkg-config module of each embedding example.
EMBED_EXAMPLES = glib:glib-2.0 libuv:libuv libevent:libevent
# A hung example fails instead of hanging the build (timeout is coreutils).
EMBED_RUN = $(shell command -v timeout >/dev/null 2>&1 && echo timeout 60)

# The libraries are looked up when the recipe runs, not when make reads
# this file: in `make embed-deps embed-examples` they arrive with the first
# goal. Each example is compiled every time (three small files).
embed-examples: $(LIB)
	@mkdir -p $(EXAMPLE_DIR); fail=0; \
	for e in $(EMBED_EXAMPLES); do \
	  name=embed_$${e%%:*}; pkg=$${e#*:}; bin=$(EXAMPLE_DIR)/$$name; \
	  rm -f $$bin; \
	  if ! $(PKG_CONFIG) --exists $$pkg 2>/dev/null; then \
	    echo "SKIP $$name: pkg-config finds no $$pkg (make embed-deps)"; \
	    continue; \
	  fi; \
	  cmd="$(CC) -std=c11 $(WARN) $(CFLAGS) -Iinclude $$($(PKG_CONFIG) --cflags $$pkg) examples/$$name.c $(LIB) $$($(PKG_CONFIG) --libs $$pkg) -lpthread -o $$bin"; \
	  echo "$$cmd"; $$cmd || { fail=1; continue; }; \
	  for be in default poll; do \
	    echo; echo "=== $$name, backend $$be ==="; \
	    if [ $$be = default ]; then env -u ASP_BACKEND $(EMBED_RUN) ./$$bin || fail=1; \
	    else ASP_BACKEND=$$be $(EMBED_RUN) ./$$bin || fail=1; fi; \
	  done; \
	done; \
	exit $$fail

ifneq ($(filter embed-deps,$(MAKECMDGOALS)),)
embed-examples: embed-deps
endif

embed-deps:
	@missing=; \
	command -v $(PKG_CONFIG) >/dev/null 2>&1 || missing="$$missing pkg-config"; \
	$(PKG_CONFIG) --exists glib-2.0 2>/dev/null || missing="$$missing libglib2.0-dev"; \
	$(PKG_CONFIG) --exists libuv 2>/dev/null || missing="$$missing libuv1-dev"; \
	$(PKG_CONFIG) --exists libevent 2>/dev/null || missing="$$missing libevent-dev"; \
	if [ -z "$$missing" ]; then echo "embed-deps: all present"; \
	elif command -v apt-get >/dev/null 2>&1; then \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $$missing; \
	else echo "embed-deps: install$$missing with your package manager"; \
	  exit 1; fi
