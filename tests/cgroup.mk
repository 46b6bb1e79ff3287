# tests/cgroup.mk - the cgroup v2 containment self-test (included by the
# top-level Makefile).
#
#   make cgroup-selftest            build tests/cgroup_selftest.c against
#                                   this configuration's library and run
#                                   it (needs root and a writable cgroup2;
#                                   says "skipped" and passes otherwise)
#   make cgroup-selftest-valgrind   the same under valgrind memcheck
#
# A plain program, not a Check suite: tests.mk leaves it out of the suites.

CGROUP_SELFTEST = $(BUILD)/tests/$(subst /,_,$(CONFIG_NAME))/cgroup_selftest
CGROUP_VALGRIND = valgrind -q --error-exitcode=99 --leak-check=full \
  --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect \
  --child-silent-after-fork=yes --track-fds=yes

.PHONY: cgroup-selftest cgroup-selftest-valgrind

$(CGROUP_SELFTEST): tests/cgroup_selftest.c src/proc/cgroup.h include/asproc.h $(LIB)
	@mkdir -p $(dir $@)
	$(CC) -std=c11 $(WARN) $(CFLAGS) $(CONFIG_FLAGS) -Iinclude -Isrc/proc $< $(LIB) -lpthread -o $@

cgroup-selftest: $(CGROUP_SELFTEST)
	$(CGROUP_SELFTEST)

cgroup-selftest-valgrind: $(CGROUP_SELFTEST)
	$(CGROUP_VALGRIND) $(CGROUP_SELFTEST)
