# tests/tests.mk - the Check suites (included by the top-level Makefile).
#
# `make check` runs the runner once per (backend, child-exit source) pair
# this build and kernel support, as printed by `check_asproc --matrix`: the
# loop suites once per backend, the process suites under every source.
# SUITES=... limits the run to some suites.

# Check's flags are asked of pkg-config when a recipe uses them, not when
# make reads this file: in `make deps check` both Check and pkg-config may
# only arrive with `deps`, after the makefiles were read. (Hence `=`, not
# `:=`; each use runs pkg-config once, a few times per build.)
CHECK_CFLAGS = $(shell $(PKG_CONFIG) --cflags check 2>/dev/null)
CHECK_LIBS = $(shell $(PKG_CONFIG) --libs check 2>/dev/null)
TEST_DIR = $(BUILD)/tests/$(subst /,_,$(CONFIG_NAME))
TEST_BIN = $(TEST_DIR)/check_asproc
CHILD_BIN = $(TEST_DIR)/asp_child
TEST_SRC = $(filter-out tests/child.c tests/cgroup_selftest.c tests/main_loop.c,$(wildcard tests/*.c))
# The reactor's suites, linked with src/loop's objects alone (not the
# archive, which would hide an upward reference by not pulling its member).
LOOP_TEST_BIN = $(TEST_DIR)/check_loop
LOOP_TEST_SRC = tests/main_loop.c tests/runner.c tests/harness.c \
                tests/test_loop.c tests/test_timer.c tests/test_io.c
TEST_HDR = $(wildcard tests/*.h) include/asproc.h
TEST_CFLAGS = -DASP_TEST_EXAMPLES -std=c11 $(WARN) $(CFLAGS) -Iinclude $(CONFIG_FLAGS) $(CHECK_CFLAGS)
SUITES ?=
# A prefix for the runner (check-valgrind sets it to valgrind).
TEST_RUN ?=

.PHONY: check check-build check-deps-ok check-loop-alone

check-deps-ok:
	@$(PKG_CONFIG) --exists check 2>/dev/null || { \
	  echo "Check (unit test framework) not found by pkg-config: run 'make deps' first"; exit 1; }

# `make deps check` (or deps with any target that builds a test binary):
# the binaries wait for deps also under -j.
ifneq ($(filter deps,$(MAKECMDGOALS)),)
check-deps-ok: deps
endif

$(TEST_BIN): $(TEST_SRC) $(TEST_HDR) $(LIB) | check-deps-ok
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) $(TEST_SRC) $(LIB) $(CHECK_LIBS) -lpthread -o $@

# The helper child is not under test: sanitizer builds give it plain
# flags (an instrumented child killed mid-exit would leave its leak
# checker's tracer behind as an orphan, which the suites count).
CHILD_CFLAGS ?= $(CFLAGS)
$(CHILD_BIN): tests/child.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 $(WARN) $(CHILD_CFLAGS) tests/child.c -o $@

# The seed examples, built with this configuration's library, next to the
# test binary (the examples suite runs them).
TEST_EXAMPLES = $(addprefix $(TEST_DIR)/examples/,$(EXAMPLES))
$(TEST_DIR)/examples/%: examples/%.c $(LIB) include/asproc.h
	@mkdir -p $(dir $@)
	$(CC) -std=c11 $(WARN) $(CFLAGS) -Iinclude $< $(LIB) -lpthread -o $@

$(LOOP_TEST_BIN): $(LOOP_TEST_SRC) $(TEST_HDR) $(LOOP_OBJ) | check-deps-ok
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) $(LOOP_TEST_SRC) $(LOOP_OBJ) $(CHECK_LIBS) -lpthread -o $@

# The reactor alone: its suites against src/loop's objects only, once per
# backend.
check-loop-alone: $(LOOP_TEST_BIN)
	@fail=0; \
	for be in $$($(LOOP_TEST_BIN) --matrix 2>/dev/null | grep ':all$$' | cut -d: -f1); do \
	  echo "== the reactor alone (src/loop objects only): backend=$$be"; \
	  ASP_BACKEND=$$be $(TEST_RUN) $(LOOP_TEST_BIN) || fail=1; \
	done; exit $$fail

check-build: $(TEST_BIN) $(CHILD_BIN) $(TEST_EXAMPLES) $(LOOP_TEST_BIN) $(ASPRUN)

# tests/matrix.sh runs the runner once per entry of its matrix.
check: check-build check-loop-alone
	@sh tests/matrix.sh -n check -r '$(TEST_RUN)' $(TEST_BIN) $(SUITES)
