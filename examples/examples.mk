# examples/examples.mk - the seed's six examples in C and ex6_pty (a
# program on a pseudo-terminal), included by the top-level Makefile.
# `make demo` builds and runs each with a heading.

EXAMPLES = $(sort $(basename $(notdir $(wildcard examples/*.c))))
EXAMPLE_DIR = $(BUILD)/examples
EXAMPLE_BINS = $(addprefix $(EXAMPLE_DIR)/,$(EXAMPLES))

.PHONY: demo examples

$(EXAMPLE_DIR)/%: examples/%.c $(LIB) include/asproc.h
	@mkdir -p $(dir $@)
	$(CC) -std=c11 $(WARN) $(CFLAGS) -Iinclude $< $(LIB) -lpthread -o $@

examples: $(EXAMPLE_BINS)

demo: examples
	@for e in $(EXAMPLES); do \
	  echo; echo "=== $$e ==="; \
	  ./$(EXAMPLE_DIR)/$$e || exit 1; \
	done
