# bench/bench.mk - the benchmark suite, included by the top-level Makefile.
#
#   make bench         full suite (about 9 minutes on 2 cores); figures to
#                      stdout and bench/results.txt
#   make bench-quick   every benchmark at small sizes with every byte
#                      checked (under a minute); exits non-zero when a
#                      check fails; never judges speed
#   make bench-deps    apt-get install libuv1-dev python3 gnuplot-nox when
#                      missing
#   make bench-plot    bench/results.png from bench/results.txt
#
# The top-level Makefile provides CC, BUILD, LIB and the rule for $(LIB).
# Alone (make -f bench/bench.mk) the asproc peer is built only when $(LIB)
# already exists. Without libuv the libuv peer is left out, and the driver
# says so.

BUILD ?= build
LIB ?= $(BUILD)/libasproc.a
PKG_CONFIG ?= pkg-config
PYTHON3 ?= python3
GNUPLOT ?= gnuplot

BENCH_BUILD = $(BUILD)/bench
BENCH_CFLAGS ?= -std=c11 -O2 -g -Wall -Wextra -Werror -pedantic
BENCH_INC = -Iinclude -Ibench
BENCH_HDR = $(wildcard bench/*.h) include/asproc.h

# libuv: whether it is there decides the list of programs to build, and
# make expands a prerequisite list when it reads the makefile. In
# `make bench-deps bench-quick` libuv (and pkg-config) only arrive with
# bench-deps, after that: so when bench-deps is one of the goals,
# bench-bins builds through a second make started after bench-deps ran
# (see bench-bins below). The flags are asked for when a recipe uses them.
BENCH_UV_CFLAGS = $(shell $(PKG_CONFIG) --cflags libuv 2>/dev/null)
BENCH_UV_LIBS = $(shell $(PKG_CONFIG) --libs libuv 2>/dev/null)
BENCH_HAVE_UV := $(shell $(PKG_CONFIG) --exists libuv 2>/dev/null && echo 1)

# The asproc peer needs the library: with the top-level Makefile, whenever
# the library has sources to build from; alone, when it is already built.
ifeq ($(origin LIB_SRC),undefined)
BENCH_HAVE_LIB := $(if $(wildcard $(LIB)),1)
else
BENCH_HAVE_LIB := $(if $(strip $(LIB_SRC)),1)
endif

BENCH_SHARED = $(BENCH_BUILD)/common.o $(BENCH_BUILD)/pattern.o \
               $(BENCH_BUILD)/jobs.o
BENCH_RAW_OBJ = $(BENCH_BUILD)/peer_raw.o $(BENCH_BUILD)/raw_stream.o \
                $(BENCH_BUILD)/raw_sys.o $(BENCH_BUILD)/child.o \
                $(BENCH_BUILD)/raw_jobs.o
BENCH_ASP_OBJ = $(BENCH_BUILD)/peer_asproc.o $(BENCH_BUILD)/child.o \
                $(BENCH_BUILD)/asp_stream_bench.o \
                $(BENCH_BUILD)/asp_sys_bench.o \
                $(BENCH_BUILD)/asp_conc_bench.o \
                $(BENCH_BUILD)/asp_tree_bench.o \
                $(BENCH_BUILD)/asp_jobs_bench.o

BENCH_BINS = $(BENCH_BUILD)/writer $(BENCH_BUILD)/peer_raw \
             $(if $(BENCH_HAVE_UV),$(BENCH_BUILD)/peer_uv) \
             $(if $(BENCH_HAVE_LIB),$(BENCH_BUILD)/peer_asproc)

BENCH_RUN = $(PYTHON3) bench/run.py --build $(BUILD) --lib $(LIB)

.PHONY: bench bench-quick bench-bins bench-deps bench-plot bench-python

ifeq ($(filter bench-deps,$(MAKECMDGOALS)),)
bench-bins: $(BENCH_BINS)
else
# The second make reads the makefiles again, now with what bench-deps
# installed; its goal is bench-bins alone, so it builds the list above.
bench-bins: bench-deps
	@$(MAKE) --no-print-directory -f $(firstword $(MAKEFILE_LIST)) bench-bins
endif

$(BENCH_BUILD)/%.o: bench/%.c $(BENCH_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(BENCH_CFLAGS) $(BENCH_INC) -c $< -o $@

$(BENCH_BUILD)/peer_uv.o $(BENCH_BUILD)/uv_jobs.o: $(BENCH_BUILD)/%.o: bench/%.c $(BENCH_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(BENCH_CFLAGS) $(BENCH_INC) $(BENCH_UV_CFLAGS) -c $< -o $@

$(BENCH_BUILD)/writer: $(BENCH_BUILD)/writer.o $(BENCH_SHARED)
	$(CC) $(BENCH_CFLAGS) -o $@ $^

$(BENCH_BUILD)/peer_raw: $(BENCH_RAW_OBJ) $(BENCH_SHARED)
	$(CC) $(BENCH_CFLAGS) -o $@ $^

$(BENCH_BUILD)/peer_uv: $(BENCH_BUILD)/peer_uv.o $(BENCH_BUILD)/uv_jobs.o \
                        $(BENCH_BUILD)/child.o $(BENCH_SHARED)
	$(CC) $(BENCH_CFLAGS) -o $@ $^ $(BENCH_UV_LIBS)

$(BENCH_BUILD)/peer_asproc: $(BENCH_ASP_OBJ) $(BENCH_SHARED) $(LIB)
	$(CC) $(BENCH_CFLAGS) -o $@ $(BENCH_ASP_OBJ) $(BENCH_SHARED) $(LIB) \
	  -lpthread

# The driver is Python; without it nothing can run, so say that plainly.
bench-python:
	@command -v $(PYTHON3) >/dev/null 2>&1 || { \
	  echo "SKIP bench: $(PYTHON3) missing: the driver bench/run.py needs" \
	       "it (make bench-deps)"; exit 1; }

bench: bench-bins bench-python
	$(BENCH_RUN) --save bench/results.txt

bench-quick: bench-bins bench-python
	$(BENCH_RUN) --quick

# Installs what the peers and the plot need, only what is missing.
bench-deps:
	@missing=; \
	$(PKG_CONFIG) --exists libuv 2>/dev/null || missing="$$missing libuv1-dev"; \
	command -v $(PKG_CONFIG) >/dev/null 2>&1 || missing="$$missing pkg-config"; \
	command -v python3 >/dev/null 2>&1 || missing="$$missing python3"; \
	command -v gnuplot >/dev/null 2>&1 || missing="$$missing gnuplot-nox"; \
	if [ -z "$$missing" ]; then echo "bench-deps: all present"; \
	elif command -v apt-get >/dev/null 2>&1; then \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $$missing; \
	else echo "bench-deps: install$$missing with your package manager"; \
	  exit 1; fi

bench-plot: bench-python
	$(PYTHON3) bench/plot.py bench/results.txt bench/results.png
