# lowbit: two commands do everything on a fresh Debian 12 machine.
#   make demo   quantize a shared model tensor in every format and print the table
#   make test   install deps, build, run all tests
BUILD ?= build
JOBS  ?= $(shell nproc)
SHARED ?= $(abspath ../shared)

.PHONY: all deps configure build test test-sanitize fuzz demo bench clean

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD)/build.ninja: CMakeLists.txt
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DLOWBIT_SHARED_DIR=$(SHARED)

configure: $(BUILD)/build.ninja

build: deps configure
	cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	bash scripts/check_install.sh $(BUILD) $(SHARED)

# The same tests built with AddressSanitizer + UndefinedBehaviorSanitizer (CI runs this
# after `make test`). Left to the plain build: the slow exhaustive truncation and the
# quality measurements that only repeat the engine over more text (30-60x slower here).
SAN_BUILD ?= build-asan
SAN_SKIP := ShakespeareTokensAndPerplexity|KldGrowsAsBitsFall|RecipeLadder|Imatrix.HelpsInDomain|GptqBeatsRtn|AwqBeatsRtn|CalibratedMethodsBeatRtn|KvCache.QualityOnARealModel|SmoothQuantLowersStaticW8A8Kld|EfficientQatBeatsPostTrainingAtTwoBits
test-sanitize: deps
	cmake -S . -B $(SAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLOWBIT_SANITIZE=ON -DLOWBIT_SHARED_DIR=$(SHARED)
	cmake --build $(SAN_BUILD) -j $(JOBS)
	cd $(SAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
	    ctest --output-on-failure -j $(JOBS) -LE slow -E '$(SAN_SKIP)'

# libFuzzer: every harness in fuzz/ for SECONDS each (clang; see docs/RELIABILITY.md).
SECONDS ?= 60
fuzz: deps
	bash scripts/fuzz.sh $(SECONDS) $(JOBS)

DEMO_MODEL := $(SHARED)/models/stories260K/stories260K.bin
DEMO_RECIPES := q8_0 q6_k q4_k_m q3_k_m q2_k

# Quantize stories260K with five recipes and compare them with the f32 base.
demo: build
	@mkdir -p $(BUILD)/demo
	@for r in $(DEMO_RECIPES); do \
	  $(BUILD)/lowbit quantize $(DEMO_MODEL) $(BUILD)/demo/stories260K-$$r.gguf --recipe $$r 2>/dev/null || exit 1; \
	  echo "quantized stories260K with $$r -> $(BUILD)/demo/stories260K-$$r.gguf"; \
	done
	$(BUILD)/lowbit eval $(DEMO_MODEL) $(foreach r,$(DEMO_RECIPES),$(BUILD)/demo/stories260K-$(r).gguf) \
	    -f $(SHARED)/data/tinystories-valid-30k.txt -c 128

bench: build
	$(BUILD)/bench_formats --benchmark_min_time=0.2 --benchmark_out=$(BUILD)/bench_formats.json \
	    --benchmark_out_format=json
	python3 bench/perf_table.py $(BUILD)/bench_formats.json
	$(BUILD)/bench_kernels --benchmark_min_time=0.2

clean:
	rm -rf $(BUILD)
