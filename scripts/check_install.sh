#!/usr/bin/env bash
# `cmake --install` into a temporary prefix, then builds examples/consumer against it with
# find_package(lowbit) and runs both programs on a shared model. Called by `make test`.
set -euo pipefail
build=$1
shared=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" > /dev/null
cmake -S examples/consumer -B "$tmp/consumer" -G Ninja -DCMAKE_PREFIX_PATH="$tmp/prefix" > /dev/null
cmake --build "$tmp/consumer" > /dev/null
model="$shared/models/stories260K/stories260K.bin"
"$tmp/consumer/quantize_and_evaluate" "$model" "$shared/data/tinystories-valid-30k.txt" "$tmp/s.gguf" q8_0 | tee "$tmp/out.txt"
grep -q "recipe q8_0" "$tmp/out.txt"
"$tmp/consumer/c_consumer" "$tmp/s.gguf" "Once upon a time" | tee "$tmp/gen.txt"
grep -q "Once upon a time, there was" "$tmp/gen.txt"
echo "install check: find_package(lowbit) consumer built and ran"
