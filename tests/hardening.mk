# tests/hardening.mk - stress, fault injection, hostile hosts, sanitizers,
# valgrind and fuzzing (included by the top-level Makefile).
#
#   make check-hard        the hardening suites (tests/hard) under every
#                          backend x child-exit source
#   make check-asan        check + check-hard built with clang and
#                          -fsanitize=address,undefined
#   make check-valgrind    check + check-hard under valgrind memcheck
#   make fuzz SECONDS=N    every libFuzzer target (tests/fuzz) for N seconds
#   make check-hardening   all of the above, with a short fuzz run; part of
#                          check-all
#
# Knobs: ASP_STORM_US (EINTR storm interval, default 100),
# ASP_STRESS_CYCLES (default 10000), ASP_STRESS_SEED,
# ASP_STRESS_SECONDS for the stress test; FUZZ_SECONDS for the fuzz run of
# check-hardening (default 60 per target).

HARD_DIR = tests/hard
HARD_BIN = $(TEST_DIR)/check_hard
FUZZ_DIR = tests/fuzz
FUZZ_CORE = $(FUZZ_DIR)/stream_target.c $(FUZZ_DIR)/proc_target.c
HARD_SRC = $(wildcard $(HARD_DIR)/*.c) tests/harness.c tests/harness_proc.c tests/runner.c $(FUZZ_CORE)
HARD_HDR = $(HARD_DIR)/hard.h tests/harness.h include/asproc.h \
           $(FUZZ_DIR)/fuzz.h $(LIB_HDR)
# CHECK_CFLAGS and CHECK_LIBS (tests/tests.mk) are expanded when the
# recipe runs, so `make deps check-hard` works in one command; keep
# HARD_CFLAGS a recursive (=) variable for that.
HARD_CFLAGS = -std=c11 $(WARN) $(CFLAGS) -Iinclude $(CONFIG_FLAGS) $(CHECK_CFLAGS) \
              -DASP_FUZZ_CORPUS='"$(abspath $(FUZZ_DIR)/corpus)"'

.PHONY: check-hard check-hard-build check-asan check-valgrind fuzz \
        fuzz-build fuzz-bins check-hardening

$(HARD_BIN): $(HARD_SRC) $(HARD_HDR) $(LIB) | check-deps-ok
	@mkdir -p $(dir $@)
	$(CC) $(HARD_CFLAGS) $(HARD_SRC) $(LIB) $(CHECK_LIBS) -lpthread -o $@

check-hard-build: $(HARD_BIN) $(CHILD_BIN)

# HARD_RUN prefixes the runner (valgrind); as in check (tests/matrix.sh),
# every pair of the runner's matrix runs the suites that depend on the
# source, and the first pair the others too.
HARD_RUN ?=
check-hard: check-hard-build
	@sh tests/matrix.sh -n check-hard -l 'hardening: ' -r '$(HARD_RUN)' \
	  $(HARD_BIN) $(SUITES)

# ------------------------------------------------------------ sanitizers
# The whole suite (check) and the hardening suites under ASan + UBSan,
# built with clang into a folder of their own. Errors abort the test that
# made them (-fno-sanitize-recover); a leak report is found in the log.
SAN_FLAGS = -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
            -fno-sanitize-recover=all
SAN_LOG = $(BUILD)/asan.log
check-asan:
	@mkdir -p $(BUILD)
	@{ ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0 \
	  UBSAN_OPTIONS=print_stacktrace=1 \
	  $(MAKE) --no-print-directory CC=clang SAN=asan BUILD=$(BUILD)/asan \
	    CFLAGS='$(SAN_FLAGS)' CHILD_CFLAGS='-O2 -g' check check-hard; echo $$? > $(SAN_LOG).st; } 2>&1 | tee $(SAN_LOG); \
	st=$$(cat $(SAN_LOG).st); \
	if grep -q -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' $(SAN_LOG); then \
	  echo "check-asan: sanitizer reports in $(SAN_LOG)"; exit 1; fi; \
	[ $$st = 0 ] && echo "check-asan: no sanitizer report, all runs passed"

# -------------------------------------------------------------- valgrind
# Every runner under memcheck (full leak check, every leak kind an error,
# fds tracked). CK_TIMEOUT_MULTIPLIER stretches Check's timeouts, and the
# stress cycles are fewer (valgrind is ~30x slower per spawn).
VALGRIND = valgrind -q --leak-check=full --errors-for-leak-kinds=all \
           --track-fds=yes --error-exitcode=1 --child-silent-after-fork=no \
           --suppressions=tests/valgrind.supp
VG_LOG = $(BUILD)/valgrind.log
check-valgrind:
	@mkdir -p $(BUILD)
	@{ CK_TIMEOUT_MULTIPLIER=10 ASP_STRESS_CYCLES=400 ASP_STORM_US=5000 \
	  $(MAKE) --no-print-directory BUILD=$(BUILD)/vg OPT='-O1 -g' \
	    TEST_RUN='$(VALGRIND)' HARD_RUN='$(VALGRIND)' check check-hard; echo $$? > $(VG_LOG).st; } 2>&1 | tee $(VG_LOG); \
	st=$$(cat $(VG_LOG).st); \
	if grep -q -E '== (Invalid|Conditional|Syscall param|Mismatched|Source and destination)|definitely lost|indirectly lost|possibly lost|still reachable in' $(VG_LOG); then \
	  echo "check-valgrind: memcheck reports in $(VG_LOG)"; exit 1; fi; \
	[ $$st = 0 ] && echo "check-valgrind: no memcheck error, all runs passed"

# --------------------------------------------------------------- fuzzing
# libFuzzer targets: the library and the targets built with clang,
# -fsanitize=fuzzer,address,undefined. Inputs that break a contract are
# saved as $(FUZZ_OUT)/crash-*; copy one into tests/fuzz/corpus/<target>/
# and the corpus suite of check-hard replays it from then on.
SECONDS ?= 60
FUZZ_SECONDS ?= 60
FUZZ_BUILD = $(BUILD)/fuzz
FUZZ_CFLAGS = -O1 -g -fsanitize=fuzzer-no-link,address,undefined \
              -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_OUT = $(FUZZ_BUILD)/out
FUZZ_TARGETS = stream proc

fuzz-build:
	@$(MAKE) --no-print-directory -s CC=clang SAN=fuzz BUILD=$(FUZZ_BUILD) \
	  CFLAGS='$(FUZZ_CFLAGS)' FUZZ_BIN_DIR=$(FUZZ_BIN_DIR) fuzz-bins

FUZZ_BIN_DIR ?= $(FUZZ_BUILD)/bin
FUZZ_CHILD = $(FUZZ_BIN_DIR)/asp_child
fuzz-bins: $(LIB)
	@mkdir -p $(FUZZ_BIN_DIR)
	$(CC) -std=c11 $(WARN) -O1 tests/child.c -o $(FUZZ_CHILD)
	for t in $(FUZZ_TARGETS); do \
	  $(CC) -std=c11 $(WARN) $(CFLAGS) -fsanitize=fuzzer -Iinclude $(CONFIG_FLAGS) \
	    -DASP_FUZZ_CHILD='"$(abspath $(FUZZ_CHILD))"' \
	    $(FUZZ_DIR)/fuzz_$$t.c $(FUZZ_DIR)/$${t}_target.c $(LIB) -lpthread \
	    -o $(FUZZ_BIN_DIR)/fuzz_$$t || exit 1; \
	done

# make fuzz SECONDS=N: each target for N seconds, from a copy of its
# corpus (the checked-in one is only read). Prints libFuzzer's final
# statistics: executions, coverage (cov), features (ft).
fuzz: fuzz-build
	@fail=0; for t in $(FUZZ_TARGETS); do \
	  rm -rf $(FUZZ_OUT)/$$t && mkdir -p $(FUZZ_OUT)/$$t/corpus && \
	  cp $(FUZZ_DIR)/corpus/$$t/* $(FUZZ_OUT)/$$t/corpus/; \
	  echo "== fuzz $$t for $(SECONDS) s"; \
	  ASAN_OPTIONS=detect_leaks=1 \
	  $(FUZZ_BIN_DIR)/fuzz_$$t -max_total_time=$(SECONDS) -max_len=4096 \
	    -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 -print_funcs=0 \
	    -artifact_prefix=$(FUZZ_OUT)/$$t/ $(FUZZ_OUT)/$$t/corpus \
	    > $(FUZZ_OUT)/$$t.log 2>&1 || fail=1; \
	  grep -E '^#[0-9]+.*(DONE|cov:)' $(FUZZ_OUT)/$$t.log | tail -1; \
	  grep -E 'stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' $(FUZZ_OUT)/$$t.log; \
	  if [ $$fail = 1 ]; then tail -40 $(FUZZ_OUT)/$$t.log; break; fi; \
	done; \
	if [ $$fail = 0 ]; then echo "fuzz: no crash"; else echo "fuzz: CRASH, input in $(FUZZ_OUT)"; fi; \
	exit $$fail

# Everything of this file; part of check-all.
check-hardening: check-hard check-asan check-valgrind
	@$(MAKE) --no-print-directory fuzz SECONDS=$(FUZZ_SECONDS)
