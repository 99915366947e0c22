# q4 - one Makefile for the native engine, its tests and benchmarks, the WASM build and
# the demo page. `make help` lists the targets. The two commands a newcomer needs:
#   make demo    set up, build, fetch CIFAR-10, serve the page at http://127.0.0.1:8000
#   make test    set up, build, fetch CIFAR-10, run every test

CC      ?= cc
ISA     ?= avx2
BUILD   := build/$(ISA)
CFLAGS  := -std=c11 -O3 -ffp-contract=off -Wall -Wextra -pthread -D_POSIX_C_SOURCE=200809L -MMD -MP
LDLIBS  := -lm -pthread
DATA_DIR := data

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

UNIT_TESTS := test_config test_training test_archive test_exact test_kernels test_quant test_gradcheck test_golden test_checkpoint test_data
FUZZERS    := fuzz_shard fuzz_archive fuzz_checkpoint fuzz_model fuzz_card

.PHONY: all build help setup data test test-unit test-scalar test-exact test-sanitize test-fuzz test-cli test-accuracy \
        test-browser bench clean wasm demo site curve
all: build

help: ## list the targets
	@grep -E '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

# -ffp-contract=off everywhere: a*b + c is never fused behind our back, so the scalar
# references and the SIMD kernels round the same way (the tests compare them bit for bit)

# ---------------------------------------------------------------- native build
build: build/q4train build/q4bench ## build the native trainer (build/q4train, AVX2; ISA=scalar for portable C)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(ISA_FLAGS) -c $< -o $@

$(LIB): $(CORE_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/q4train: $(BUILD)/cli/q4train.o $(LIB)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/q4bench: $(BUILD)/cli/q4bench.o $(LIB)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

build/q4train: $(BUILD)/q4train
	cp $< $@

build/q4bench: $(BUILD)/q4bench
	cp $< $@

$(BUILD)/tests/%: tests/%.c $(LIB) tests/test_util.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(ISA_FLAGS) $< $(LIB) -o $@ $(LDLIBS)

-include $(CORE_OBJ:.o=.d) $(BUILD)/cli/q4train.d $(BUILD)/cli/q4bench.d

# ---------------------------------------------------------------- set-up and data
setup: ## install what is missing (Debian packages, npm devDependencies)
	scripts/setup.sh

data: ## fetch CIFAR-10 into data/ and check the official MD5s
	node scripts/fetch-cifar10.mjs $(DATA_DIR)

# ---------------------------------------------------------------- tests
test: setup data ## the whole suite: unit, scalar, WASM, sanitizers, fuzzing, CLI, accuracy, browser
	$(MAKE) test-unit test-scalar test-wasm test-exact test-sanitize test-fuzz test-cli test-accuracy test-browser
	@echo "make test: everything passed"

test-unit: $(UNIT_TESTS:%=$(BUILD)/tests/%) ## unit, golden, checkpoint and data tests (AVX2 build)
	@for t in $(UNIT_TESTS); do echo "== $$t"; $(BUILD)/tests/$$t || exit 1; done

test-scalar: ## the portable scalar build against the same references and PyTorch goldens
	$(MAKE) ISA=scalar build/scalar/tests/test_kernels build/scalar/tests/test_gradcheck build/scalar/tests/test_golden
	build/scalar/tests/test_kernels && build/scalar/tests/test_gradcheck && build/scalar/tests/test_golden

SAN_FLAGS := -std=c11 -O1 -g -ffp-contract=off -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all \
             -Wall -Wextra -pthread -D_POSIX_C_SOURCE=200809L -mavx2 -mfma
SAN_SRC   := $(filter-out core/kernels/wasmsimd/%,$(shell find core -name '*.c' | sort))
build/sanitize/%: tests/%.c $(SAN_SRC) $(wildcard core/*/*.h core/*/*/*.h core/include/*.h)
	@mkdir -p $(dir $@)
	clang $(SAN_FLAGS) $< $(SAN_SRC) -o $@ -lm

# every unit test (test_data without its learning run, which takes minutes under ASan)
test-sanitize: $(UNIT_TESTS:%=build/sanitize/%) ## every unit test under ASan+UBSan
	@for t in $(filter-out test_data,$(UNIT_TESTS)); do echo "== sanitize $$t"; build/sanitize/$$t || exit 1; done
	Q4_SKIP_LEARNING=1 build/sanitize/test_data build/sanitize-data

# Q4_FUZZING: checkpoints and models pass their CRC check whatever it says (core/util/util.h)
FUZZ_FLAGS := -std=c11 -O1 -g -ffp-contract=off -fsanitize=fuzzer,address,undefined -pthread -D_POSIX_C_SOURCE=200809L -mavx2 -mfma \
              -DQ4_FUZZING
build/fuzz/%: tests/fuzz/%.c $(SAN_SRC) $(wildcard core/*/*.h core/*/*/*.h core/include/*.h)
	@mkdir -p $(dir $@)
	clang $(FUZZ_FLAGS) $< $(SAN_SRC) -o $@ -lm

FUZZ_SECONDS ?= 20
test-fuzz: build $(FUZZERS:%=build/fuzz/%) ## each libFuzzer target for FUZZ_SECONDS (about a minute in all)
	scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZERS)

test-cli: build ## the trainer as a user runs it: bad data, resume, export, log, statistics
	tests/test_cli.sh build/q4train $(DATA_DIR)

test-accuracy: $(BUILD)/tests/test_accuracy ## one epoch of real CIFAR-10 (data_batch_1), 4-bit and FP32
	$(BUILD)/tests/test_accuracy $(DATA_DIR)/cifar-10-batches-bin

test-browser: build wasm site ## the page and the built site in headless Chromium (Playwright), and the dev server
	node --test --test-reporter=spec tests/browser/

bench: build wasm ## native, WASM-in-Chromium and PyTorch images/s at batch 128, in one run
	node scripts/bench.mjs

# test accuracy per epoch of the recipes side by side (results/curve.svg); hours: run it with nohup.
# The logs it finds complete in results/logs/ are drawn, not trained again.
EPOCHS ?= 10
SEEDS ?= 0
curve: build ## train the paper and fast recipes EPOCHS epochs (SEEDS) with --log, draw results/curve.svg
	node scripts/curve.mjs --epochs $(EPOCHS) --seeds $(SEEDS)

# the page as a static site for any host and path (make site DATA=0: without the CIFAR-10 shards)
DATA ?= 1
site: wasm $(if $(filter 0,$(DATA)),,data) ## write dist/: the page, both WebAssembly builds and the data (DATA=0: without), for any static host
	node scripts/site.mjs --out dist $(if $(filter 0,$(DATA)),--no-data)

demo: setup build wasm data ## set up, build, fetch CIFAR-10 and serve the page at http://127.0.0.1:8000
	node scripts/serve.mjs --port $${PORT:-8000}

clean: ## remove build outputs
	rm -rf build

# ---------------------------------------------------------------- WebAssembly (Emscripten 3.1.6)
# Two builds of the same core: q4-mt (SIMD128 + pthreads on web workers, needs a
# cross-origin isolated page) and q4-st (SIMD128, one thread, for pages that are not).
EMCC       := NODE_PATH=/usr/share/nodejs emcc
WASM_CORE  := $(filter-out core/kernels/avx2/%,$(shell find core -name '*.c' | sort))
WASM_CFLAGS := -std=c11 -O3 -ffp-contract=off -msimd128 -Wall -Wextra -D_POSIX_C_SOURCE=200809L -MMD -MP
WASM_EXPORTS := $(shell grep -o 'q4w_[a-z_0-9]*' wasm/bindings.c | sort -u | sed 's/^/_/' | paste -sd, -)
WASM_LFLAGS := -s MODULARIZE=1 -s EXPORT_NAME=createQ4Module -s ENVIRONMENT=web,worker \
  -s ALLOW_MEMORY_GROWTH=1 -s INITIAL_MEMORY=64MB -s MAXIMUM_MEMORY=2GB -s TOTAL_STACK=1MB \
  -s EXPORTED_FUNCTIONS=$(WASM_EXPORTS),_malloc,_free \
  -s EXPORTED_RUNTIME_METHODS=ccall,cwrap,UTF8ToString,stringToUTF8,lengthBytesUTF8 \
  -s FILESYSTEM=0 -s ASSERTIONS=0
WASM_OUT   := build/wasm

build/wasm-obj/mt/%.o: %.c
	@mkdir -p $(dir $@)
	$(EMCC) $(WASM_CFLAGS) -pthread -c $< -o $@
build/wasm-obj/st/%.o: %.c
	@mkdir -p $(dir $@)
	$(EMCC) $(WASM_CFLAGS) -c $< -o $@

$(WASM_OUT)/q4-mt.js: $(WASM_CORE:%.c=build/wasm-obj/mt/%.o) build/wasm-obj/mt/wasm/bindings.o
	@mkdir -p $(dir $@)
	$(EMCC) -O3 -msimd128 -pthread -s PTHREAD_POOL_SIZE='Math.min(navigator.hardwareConcurrency||2,16)' \
	  -s PTHREAD_POOL_SIZE_STRICT=0 $(WASM_LFLAGS) $^ -o $@
$(WASM_OUT)/q4-st.js: $(WASM_CORE:%.c=build/wasm-obj/st/%.o) build/wasm-obj/st/wasm/bindings.o
	@mkdir -p $(dir $@)
	$(EMCC) -O3 -msimd128 $(WASM_LFLAGS) $^ -o $@
$(WASM_OUT)/q4.js: wasm/q4.js
	@mkdir -p $(dir $@)
	cp $< $@

wasm: $(WASM_OUT)/q4-mt.js $(WASM_OUT)/q4-st.js $(WASM_OUT)/q4.js ## the WebAssembly builds (build/wasm/)

-include $(shell find build/wasm-obj -name '*.d' 2>/dev/null)

# test and benchmark programs built for WebAssembly and run under Node.js (same kernels as
# the page; NODERAWFS lets them read the fixtures and data)
WASM_NODE_FLAGS := -O3 -msimd128 -pthread -s PTHREAD_POOL_SIZE=8 -s ALLOW_MEMORY_GROWTH=1 -s MAXIMUM_MEMORY=4GB \
  -s NODERAWFS=1 -s EXIT_RUNTIME=1 -s ENVIRONMENT=node,worker -s TOTAL_STACK=4MB
build/wasm-node/%.js: tests/%.c $(WASM_CORE:%.c=build/wasm-obj/mt/%.o)
	@mkdir -p $(dir $@) && echo '{"type": "commonjs"}' > $(dir $@)package.json
	$(EMCC) $(WASM_CFLAGS) $(WASM_NODE_FLAGS) $< $(WASM_CORE:%.c=build/wasm-obj/mt/%.o) -o $@
build/wasm-node/q4bench.js: cli/q4bench.c $(WASM_CORE:%.c=build/wasm-obj/mt/%.o)
	@mkdir -p $(dir $@) && echo '{"type": "commonjs"}' > $(dir $@)package.json
	$(EMCC) $(WASM_CFLAGS) $(WASM_NODE_FLAGS) $< $(WASM_CORE:%.c=build/wasm-obj/mt/%.o) -o $@

WASM_NODE := node --no-experimental-fetch

# exact mode: the AVX2, scalar and WebAssembly builds print the same state hashes and losses
test-exact: $(BUILD)/tests/test_exact build/wasm-node/test_exact.js ## exact mode gives the same bits natively (AVX2, scalar) and in WebAssembly
	$(MAKE) ISA=scalar build/scalar/tests/test_exact
	$(BUILD)/tests/test_exact | grep '^exact ' > build/exact-avx2.txt
	build/scalar/tests/test_exact | grep '^exact ' > build/exact-scalar.txt
	$(WASM_NODE) build/wasm-node/test_exact.js | grep '^exact ' > build/exact-wasm.txt
	@cat build/exact-avx2.txt
	@cmp build/exact-avx2.txt build/exact-scalar.txt && cmp build/exact-avx2.txt build/exact-wasm.txt && \
	  echo "test-exact: AVX2, scalar and WebAssembly builds agree bit for bit"
test-wasm: $(addprefix build/wasm-node/,test_kernels.js test_quant.js test_gradcheck.js test_golden.js) ## kernel, quantizer, gradient and golden tests of the WASM build under Node.js
	@for t in test_kernels test_quant test_gradcheck test_golden; do echo "== wasm $$t"; $(WASM_NODE) build/wasm-node/$$t.js || exit 1; done
