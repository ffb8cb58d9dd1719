# lowbit: two commands do everything on a fresh Debian 12 machine.
#   make demo   quantize a shared model tensor in every format and print the table
#   make test   install deps, build, run all tests
BUILD ?= build
JOBS  ?= $(shell nproc)
SHARED ?= $(abspath ../shared)

.PHONY: all deps configure build test demo bench clean

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

demo: build
	$(BUILD)/lowbit formats
	$(BUILD)/lowbit probe $(SHARED)/models/shakespeare-llama-4m/model.safetensors \
	    --tensor model.layers.0.mlp.down_proj.weight

bench: build
	$(BUILD)/bench_formats --benchmark_min_time=0.2 --benchmark_out=$(BUILD)/bench_formats.json \
	    --benchmark_out_format=json
	python3 bench/perf_table.py $(BUILD)/bench_formats.json

clean:
	rm -rf $(BUILD)
