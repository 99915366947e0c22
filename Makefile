# q4 - one Makefile for the native engine, its tests and benchmarks, the WASM build and
# the demo page. `make help` lists the targets.

CC      ?= cc
ISA     ?= avx2
BUILD   := build/$(ISA)
CFLAGS  := -std=c11 -O3 -Wall -Wextra -pthread -D_POSIX_C_SOURCE=200809L -MMD -MP
LDLIBS  := -lm -pthread

ifeq ($(ISA),avx2)
  ISA_FLAGS := -mavx2 -mfma
  ISA_SRC   := $(wildcard core/kernels/avx2/*.c)
else ifeq ($(ISA),scalar)
  ISA_FLAGS :=
  ISA_SRC   :=
else
  $(error ISA must be avx2 or scalar)
endif

# the engine: everything in core/ except the other ISAs' kernels
CORE_SRC := $(filter-out core/kernels/avx2/% core/kernels/wasmsimd/%,$(shell find core -name '*.c' | sort)) $(ISA_SRC)
CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/%.o)
LIB      := $(BUILD)/libq4.a

.PHONY: all build help
all: build

help: ## list the targets
	@grep -E '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

build: $(BUILD)/q4train build/q4train ## build the native trainer (build/q4train)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(ISA_FLAGS) -c $< -o $@

$(LIB): $(CORE_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/q4train: $(BUILD)/cli/q4train.o $(LIB)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

build/q4train: $(BUILD)/q4train
	cp $< $@

-include $(CORE_OBJ:.o=.d) $(BUILD)/cli/q4train.d

clean: ## remove build outputs
	rm -rf build

# ---------------------------------------------------------------- tests
TEST_NAMES := test_kernels test_quant test_gradcheck test_golden test_checkpoint test_data
TEST_BINS  := $(TEST_NAMES:%=$(BUILD)/tests/%)

$(BUILD)/tests/%: tests/%.c $(LIB) tests/test_util.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(ISA_FLAGS) $< $(LIB) -o $@ $(LDLIBS)
