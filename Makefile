# q4 - one Makefile for the native engine, its tests and benchmarks, the WASM build and
# the demo page. `make help` lists the targets. The two commands a newcomer needs:
#   make demo    set up, build, fetch CIFAR-10, serve the page at http://127.0.0.1:8000
#   make test    set up, build, fetch CIFAR-10, run every test

CC      ?= cc
BUILD   := build/native
CFLAGS  := -std=c11 -O3 -ffp-contract=off -Wall -Wextra -pthread -D_POSIX_C_SOURCE=200809L -MMD -MP
LDLIBS  := -lm -pthread
DATA_DIR := data

# One native binary for every CPU of its architecture: the engine is compiled for the base
# ISA, and only the x86 kernel files for theirs; kernels.c picks one at run time (cpuid),
# or the one Q4_ISA names. Elsewhere (e.g. arm64) the portable scalar kernels run.
AVX2_FLAGS   := -mavx2 -mfma
AVX512_FLAGS := -mavx512f -mavx2 -mfma
AVX512VNNI_FLAGS := -mavx512f -mavx512bw -mavx512vnni -mavx2 -mfma
ifneq ($(filter x86_64 i386 i486 i586 i686,$(firstword $(subst -, ,$(shell $(CC) -dumpmachine)))),)
  ISA_SRC := $(wildcard core/kernels/avx2/*.c core/kernels/avx512/*.c)
else
  CFLAGS  += -DQ4_NO_X86_KERNELS
  ISA_SRC :=
endif
%-avx2.o: ISA_FLAGS := $(AVX2_FLAGS)
%-avx512.o: ISA_FLAGS := $(AVX512_FLAGS)
%-avx512vnni.o: ISA_FLAGS := $(AVX512VNNI_FLAGS)

# the engine: everything in core/ except the ISA kernels of other machines
CORE_SRC := $(filter-out core/kernels/avx2/% core/kernels/avx512/% core/kernels/wasmsimd/%,$(shell find core -name '*.c' | sort)) $(ISA_SRC)
CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/%.o)
LIB      := $(BUILD)/libq4.a

# the longest first (2026-12-07, this machine: test_checkpoint 33 s, test_training 30, test_exact 25,
# test_data 23, test_quant 19, the rest 7 together), so that two at a time end close together
UNIT_TESTS := test_checkpoint test_training test_exact test_data test_quant test_kernels test_golden test_gradcheck test_config test_archive
FUZZERS    := fuzz_shard fuzz_archive fuzz_checkpoint fuzz_model fuzz_card

.PHONY: all build help setup data test check-readme headline test-unit test-isas test-exact test-sanitize test-fuzz test-cli test-accuracy \
        test-browser test-programs bench bench-conv bench-iconv integer-accuracy relaxed-probe bench-elementwise clean wasm demo site curve mpi test-mpi bench-mpi
all: build

help: ## list the targets
	@grep -hE '^[a-z][a-z-]*:.*## ' Makefile | sed 's/:.*## /\t/'

# -ffp-contract=off everywhere: a*b + c is never fused behind our back, so the scalar
# references and the SIMD kernels round the same way (the tests compare them bit for bit)

# ---------------------------------------------------------------- native build
build: build/q4train build/q4bench ## build the native trainer (build/q4train: AVX-512, AVX2 or scalar kernels, chosen at run time)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(ISA_FLAGS) -c $< -o $@

$(LIB): $(CORE_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/q4train: $(BUILD)/cli/q4train.o $(BUILD)/cli/front_single.o $(LIB)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

# data-parallel training over Open MPI (README, "Several processes"): the same q4train object
# with the MPI front (cli/front_mpi.c) instead of the single-process one; the core has no MPI
MPICC := mpicc
mpi: build/q4train-mpi ## build build/q4train-mpi: q4train as mpirun's ranks, the same bits for any number of them
$(BUILD)/cli/front_mpi.o: cli/front_mpi.c
	@mkdir -p $(dir $@)
	$(MPICC) $(CFLAGS) -c $< -o $@
$(BUILD)/q4train-mpi: $(BUILD)/cli/q4train.o $(BUILD)/cli/front_mpi.o $(LIB)
	$(MPICC) $(CFLAGS) $^ -o $@ $(LDLIBS)
build/q4train-mpi: $(BUILD)/q4train-mpi
	cp $< $@

$(BUILD)/q4bench: $(BUILD)/cli/q4bench.o $(LIB)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

build/q4train: $(BUILD)/q4train
	cp $< $@

build/q4bench: $(BUILD)/q4bench
	cp $< $@

$(BUILD)/tests/%: tests/%.c $(LIB) tests/test_util.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< $(LIB) -o $@ $(LDLIBS)

-include $(CORE_OBJ:.o=.d) $(BUILD)/cli/q4train.d $(BUILD)/cli/q4bench.d

# ---------------------------------------------------------------- set-up and data
setup: ## install what is missing (Debian packages, npm devDependencies)
	scripts/setup.sh

data: ## fetch CIFAR-10 into data/ and check the official MD5s
	node scripts/fetch-cifar10.mjs $(DATA_DIR)

# ---------------------------------------------------------------- tests
# unit and sanitizer programs run TEST_JOBS at a time (scripts/run-tests.sh); timing-free
TEST_JOBS ?= 2
# every program the suite runs, built first TEST_JOBS at a time (on a clean clone the C, sanitizer,
# fuzzer and WebAssembly builds take minutes one file after the other); the tests then run in order
TEST_PROGRAMS = build/q4train build/q4train-mpi build/q4bench $(UNIT_TESTS:%=$(BUILD)/tests/%) $(BUILD)/tests/test_accuracy \
  $(UNIT_TESTS:%=build/sanitize/%) $(FUZZERS:%=build/fuzz/%) \
  $(addprefix build/wasm-node/,test_kernels.js test_quant.js test_gradcheck.js test_golden.js test_exact.js) \
  $(WASM_OUT)/q4-mt.js $(WASM_OUT)/q4-st.js $(WASM_OUT)/q4.js
test: setup data ## the whole suite: unit, every ISA of this CPU, WASM, exact mode, sanitizers, fuzzing, CLI, MPI, accuracy, browser
	$(MAKE) -j$(TEST_JOBS) test-programs
	$(MAKE) check-readme test-unit test-isas test-wasm test-exact test-sanitize test-fuzz test-cli test-mpi test-accuracy test-browser
	@echo "make test: everything passed"

check-readme: ## the README's result tables against the run logs under results/ they come from
	node scripts/check-readme.mjs

# test_exact runs in test-exact, with every ISA this CPU has (this one first), not twice
test-unit: $(UNIT_TESTS:%=$(BUILD)/tests/%) $(BUILD)/q4bench ## unit, golden, checkpoint and data tests (the kernels this CPU runs best)
	@echo "kernels: $$($(BUILD)/q4bench --kernels)"
	@scripts/run-tests.sh $(TEST_JOBS) $(filter-out $(BUILD)/tests/test_exact,$(UNIT_TESTS:%=$(BUILD)/tests/%))

# every other ISA this CPU runs, against the same references and PyTorch goldens (Q4_ISA is
# read by the tests' start-up code, tests/test_util.h, as by the front ends)
test-isas: $(addprefix $(BUILD)/,q4bench tests/test_kernels tests/test_gradcheck tests/test_golden) ## kernels, gradients and goldens with every other ISA this CPU has (scalar, AVX2)
	@first=$$($(BUILD)/q4bench --isas | cut -d' ' -f1); set --; \
	for isa in $$($(BUILD)/q4bench --isas); do [ "$$isa" = "$$first" ] && continue; \
	  for t in test_kernels test_gradcheck test_golden; do set -- "$$@" "Q4_ISA=$$isa $(BUILD)/tests/$$t"; done; done; \
	scripts/run-tests.sh $(TEST_JOBS) "$$@"

SAN_FLAGS := -std=c11 -O1 -g -ffp-contract=off -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all \
             -Wall -Wextra -pthread -D_POSIX_C_SOURCE=200809L -MMD -MP $(filter -DQ4_NO_X86_KERNELS,$(CFLAGS))
SAN_OBJ   := $(CORE_SRC:%.c=build/sanitize/obj/%.o)
build/sanitize/obj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(SAN_FLAGS) $(ISA_FLAGS) -c $< -o $@
# Every sanitized test but test_kernels links the ISA microkernel files (core/kernels/avx2,
# avx512: the intrinsics, where nearly all the arithmetic is) as the native build compiled them,
# without the sanitizers: ASan's check of every load made them most of the sanitized tests' time
# (test_training 142 s, test_checkpoint 118 s, 2026-12-07), and test_kernels checks them under
# the sanitizers, on ragged sizes against their references. The code that sizes, carves and
# indexes the buffers they work in (gemm.c, winograd.c, conv.c, the model, the session) stays
# instrumented everywhere.
SAN_ISA_SRC := $(filter core/kernels/avx2/% core/kernels/avx512/%,$(CORE_SRC))
SAN_LEAN_OBJ := $(filter-out $(SAN_ISA_SRC:%.c=build/sanitize/obj/%.o),$(SAN_OBJ)) $(SAN_ISA_SRC:%.c=$(BUILD)/%.o)
build/sanitize/test_kernels: tests/test_kernels.c $(SAN_OBJ) tests/test_util.h
	@mkdir -p $(dir $@)
	clang $(SAN_FLAGS) $< $(SAN_OBJ) -o $@ -lm
build/sanitize/%: tests/%.c $(SAN_LEAN_OBJ) tests/test_util.h
	@mkdir -p $(dir $@)
	clang $(SAN_FLAGS) $< $(SAN_LEAN_OBJ) -o $@ -lm
-include $(SAN_OBJ:.o=.d)

# every unit test (test_data without its learning run, which takes minutes under ASan), the
# longest first (under the sanitizers, 2026-12-07: test_training 104 s, test_checkpoint 98, test_exact
# 75, test_quant 52, the rest 30 together), so that the two at a time end close together
SAN_FIRST := test_training test_checkpoint test_exact test_quant
test-sanitize: $(UNIT_TESTS:%=build/sanitize/%) ## every unit test under ASan+UBSan
	@scripts/run-tests.sh $(TEST_JOBS) $(patsubst %,build/sanitize/%,$(SAN_FIRST) $(filter-out $(SAN_FIRST) test_data,$(UNIT_TESTS))) \
	  "Q4_SKIP_LEARNING=1 build/sanitize/test_data build/sanitize-data"

# Q4_FUZZING: checkpoints and models pass their CRC check whatever it says (core/util/util.h).
# The engine is compiled once for all targets (with the fast kernels: the checkpoint and model
# targets train a step on each accepted input), then linked with each target's entry point.
FUZZ_FLAGS := -std=c11 -O1 -g -ffp-contract=off -fsanitize=address,undefined -pthread -D_POSIX_C_SOURCE=200809L \
              -DQ4_FUZZING -MMD -MP $(filter -DQ4_NO_X86_KERNELS,$(CFLAGS))
FUZZ_OBJ   := $(CORE_SRC:%.c=build/fuzz/obj/%.o)
build/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link $(ISA_FLAGS) -c $< -o $@
build/fuzz/%: tests/fuzz/%.c $(FUZZ_OBJ)
	@mkdir -p $(dir $@)
	clang $(FUZZ_FLAGS) -fsanitize=fuzzer $< $(FUZZ_OBJ) -o $@ -lm
-include $(FUZZ_OBJ:.o=.d)
# Objects that only pattern rules ask for are intermediate to make, which deleted them after
# `make -j2 test-programs` built them, so test-sanitize and test-fuzz compiled them all again,
# one at a time (about 30 s each, 2026-12-07): keep them.
.SECONDARY: $(SAN_OBJ) $(FUZZ_OBJ)

FUZZ_SECONDS ?= 4
test-fuzz: build $(FUZZERS:%=build/fuzz/%) ## each libFuzzer target for FUZZ_SECONDS (4 s; make test-fuzz FUZZ_SECONDS=600 for a longer search), two at a time (about 15 s, and 1 min to build them)
	scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZERS)

test-cli: build ## the trainer as a user runs it: bad data, resume, export, log, statistics
	tests/test_cli.sh build/q4train $(DATA_DIR)

bench-mpi: build mpi ## one process x 2 threads against 2 ranks x 1 thread (interleaved): images/s, combining time and bytes per step
	scripts/bench-mpi.sh 3 $(DATA_DIR)

test-mpi: build mpi ## data-parallel training: 2 and 3 ranks against one process, byte for byte; a rank killed; resumes on other counts
	tests/test_mpi.sh build/q4train build/q4train-mpi $(DATA_DIR)

test-accuracy: $(BUILD)/tests/test_accuracy ## one epoch of real CIFAR-10 (data_batch_1), 4-bit and FP32
	$(BUILD)/tests/test_accuracy $(DATA_DIR)/cifar-10-batches-bin

# (one file at a time: two at a time, tried on 2026-12-07, left Firefox's upload of a native
# checkpoint unanswered for 2 minutes, and each test ran about half as fast again)
test-browser: build mpi wasm site ## the page and the built site in headless Chromium (Playwright), the site in Firefox ESR and WebKitGTK, and the dev server
	node --test --test-reporter=spec tests/browser/

bench: build wasm ## native, WASM in Chromium, Firefox ESR and WebKitGTK, and PyTorch images/s at batch 128, in one run
	node scripts/bench.mjs

# where the Winograd thresholds come from (kernels/winograd.c): each convolution of the network by
# the direct GEMM, F(2x2) and F(4x4), with every ISA this CPU has and in WebAssembly (Node.js)
BENCH_CONV_THREADS ?= 2
bench-conv: $(BUILD)/tests/bench_conv $(BUILD)/q4bench build/wasm-node/bench_conv.js ## per-layer ms of the direct GEMM, Winograd F(2x2) and F(4x4), natively (each ISA) and in WASM
	@for isa in $$($(BUILD)/q4bench --isas); do [ $$isa = scalar ] || Q4_ISA=$$isa $(BUILD)/tests/bench_conv $(BENCH_CONV_THREADS); done
	$(WASM_NODE) build/wasm-node/bench_conv.js $(BENCH_CONV_THREADS)

# milliseconds per call of each optimizer and quantizer kernel over the model's 3.25M parameters,
# the ISA's kernel beside the scalar reference, natively and in WebAssembly (Node.js)
bench-iconv: $(BUILD)/tests/bench_iconv $(BUILD)/q4bench build/wasm-node/bench_iconv.js ## per-layer ms of the evaluation forward pass in floats and in integer arithmetic, natively (each ISA) and in WASM
	@for isa in $$($(BUILD)/q4bench --isas); do [ $$isa = scalar ] || Q4_ISA=$$isa $(BUILD)/tests/bench_iconv $(BENCH_CONV_THREADS); done
	$(WASM_NODE) build/wasm-node/bench_iconv.js $(BENCH_CONV_THREADS)

integer-accuracy: build ## every committed exported model evaluated in floats and in integer arithmetic (results/integer/models.txt)
	scripts/integer-accuracy.sh > results/integer/models.txt
	cat results/integer/models.txt

relaxed-probe: ## does relaxed SIMD pay? its integer dot product and fused multiply-add against SIMD128's, in Chromium, Firefox ESR and WebKitGTK (results/relaxed-simd-probe.txt)
	@for b in chromium firefox webkit; do node scripts/relaxed-simd/probe.mjs --browser $$b || exit 1; echo; done

bench-elementwise: $(BUILD)/tests/bench_elementwise build/wasm-node/bench_elementwise.js ## ms per call of the elementwise kernels, each ISA against scalar, natively and in WASM
	$(BUILD)/tests/bench_elementwise
	$(WASM_NODE) build/wasm-node/bench_elementwise.js

# test accuracy per epoch of the recipes side by side (results/curve.svg); hours: run it with nohup.
# The logs it finds complete in results/logs/ are drawn, not trained again.
EPOCHS ?= 10
SEEDS ?= 0
curve: build ## train the paper and fast recipes EPOCHS epochs (SEEDS) with --log, draw results/curve.svg
	node scripts/curve.mjs --epochs $(EPOCHS) --seeds $(SEEDS)

# The headline runs (README, "The headline"): the fast15 recipe (the fast recipe with alternating
# flips, 15 epochs), 4-bit and FP32 weights, seeds 0 and 1, each with its log, run card and
# exported model in results/headline/, the same 4-bit recipe planned for 20 and 25 epochs (and
# FP32 for 25), and the page's headline preset (fast15 with lookahead every 5 steps) at 15 epochs,
# 4-bit and FP32, 4-bit planned for 17 and 20, and both planned for 18 (the headline18 preset);
# runs whose log is complete are drawn, not trained again (about 1 h per 15 epochs). The plot's
# left panel: accuracy per epoch of lookahead at 15 and 18 epochs, 4-bit and FP32; its right
# panel: every run's seeds at its last epoch.
HEADLINE_RECIPE := --recipe fast15
headline: build ## train the headline runs missing from results/headline/ (hours), draw results/headline/curve.svg
	node scripts/curve.mjs --logs results/headline --out results/headline/curve.svg --epochs 15 --seeds 0,1 \
	  --artifacts --paper-lines --finals --curves "4bit la5,fp32 la5,4bit la5 e18,fp32 la5 e18" \
	  --title "CIFAR-10 test accuracy, the fast15 recipe and its variants (q4, natively; 4-bit unless FP32)" \
	  --run "4bit=$(HEADLINE_RECIPE)" --run "fp32=$(HEADLINE_RECIPE) --fp32" \
	  --run "4bit e20=$(HEADLINE_RECIPE) --epochs 20" --run "4bit e25=$(HEADLINE_RECIPE) --epochs 25" \
	  --run "fp32 e25=$(HEADLINE_RECIPE) --fp32 --epochs 25" \
	  --run "4bit la5=$(HEADLINE_RECIPE) --lookahead 5" --run "fp32 la5=$(HEADLINE_RECIPE) --fp32 --lookahead 5" \
	  --run "4bit la5 e17=$(HEADLINE_RECIPE) --lookahead 5 --epochs 17" \
	  --run "4bit la5 e18=$(HEADLINE_RECIPE) --lookahead 5 --epochs 18" \
	  --run "fp32 la5 e18=$(HEADLINE_RECIPE) --fp32 --lookahead 5 --epochs 18" \
	  --run "4bit la5 e20=$(HEADLINE_RECIPE) --lookahead 5 --epochs 20"

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
WASM_CORE  := $(filter-out core/kernels/avx2/% core/kernels/avx512/%,$(shell find core -name '*.c' | sort))
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

# exact mode: every ISA this CPU runs and the WebAssembly build print the same state hashes and losses
test-exact: $(BUILD)/tests/test_exact $(BUILD)/q4bench build/wasm-node/test_exact.js ## exact mode gives the same bits natively (every ISA this CPU has) and in WebAssembly
	@$(WASM_NODE) build/wasm-node/test_exact.js > build/exact-wasm.log 2>&1 & wasm=$$!; \
	for isa in $$($(BUILD)/q4bench --isas); do \
	  Q4_ISA=$$isa $(BUILD)/tests/test_exact > build/exact-$$isa.log 2>&1 || { cat build/exact-$$isa.log; kill $$wasm; exit 1; }; done; \
	wait $$wasm || { cat build/exact-wasm.log; exit 1; }
	@grep '^exact ' build/exact-wasm.log > build/exact-wasm.txt; cat build/exact-wasm.txt
	@for isa in $$($(BUILD)/q4bench --isas); do grep '^exact ' build/exact-$$isa.log > build/exact-$$isa.txt; \
	  cmp build/exact-$$isa.txt build/exact-wasm.txt || exit 1; echo "test-exact: $$isa agrees with WebAssembly"; done
	@echo "test-exact: $$($(BUILD)/q4bench --isas) and WebAssembly agree bit for bit"
test-wasm: $(addprefix build/wasm-node/,test_kernels.js test_quant.js test_gradcheck.js test_golden.js) ## kernel, quantizer, gradient and golden tests of the WASM build under Node.js
	@scripts/run-tests.sh $(TEST_JOBS) $(foreach t,test_kernels test_quant test_gradcheck test_golden,"$(WASM_NODE) build/wasm-node/$(t).js")

# (last: its prerequisites are expanded as the rule is read, and name the WebAssembly outputs)
test-programs: $(TEST_PROGRAMS) ## build every program make test runs, TEST_JOBS at a time
