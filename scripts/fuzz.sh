#!/usr/bin/env bash
# Builds the libFuzzer harnesses (clang, ASan + UBSan) and runs each for SECONDS seconds,
# JOBS at a time. Each harness's corpus grows in build-fuzz/corpus/NAME (seeded from
# fuzz/corpus/NAME); findings land in build-fuzz/findings/NAME; the table at the end
# (harness, seconds, executions, coverage, findings) is what docs/RELIABILITY.md records.
# Limits: a run slower than 5 s is a hang, more than 2 GB of memory is an out-of-memory.
# usage: scripts/fuzz.sh SECONDS [JOBS] [HARNESS...]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-60}; JOBS=${2:-$(nproc)}; shift $(( $# < 2 ? $# : 2 )) || true
SHARED=$(cd ../shared && pwd)
B=build-fuzz
if ! command -v clang++ >/dev/null; then
  echo "fuzz: clang++ is missing (scripts/install-deps.sh --fuzz installs it)" >&2; exit 1
fi
cmake -S . -B $B -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ -DLOWBIT_FUZZ=ON \
  -DLOWBIT_SHARED_DIR="$SHARED" >/dev/null
cmake --build $B -j "$(nproc)"
harnesses=("$@")
if [ ${#harnesses[@]} -eq 0 ]; then
  harnesses=(gguf safetensors config_json tokenizer_json tokenizer_model llama2c llama2c_tokenizer imatrix recipe model)
fi
mkdir -p $B/logs
run_one() {
  local h=$1
  rm -rf $B/findings/$h; mkdir -p $B/corpus/$h $B/findings/$h
  # Fork mode keeps fuzzing after a finding (each is saved under findings/) so one run
  # covers the whole time; -timeout and -rss_limit_mb make hangs and OOMs findings too.
  ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1 \
    $B/fuzz_$h -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 -max_total_time="$SECONDS_EACH" \
    -timeout=5 -rss_limit_mb=2048 -max_len=1200000 -artifact_prefix=$B/findings/$h/ \
    $B/corpus/$h fuzz/corpus/$h >$B/logs/$h.log 2>&1 || true
}
export -f run_one; export B SECONDS_EACH
printf '%s\n' "${harnesses[@]}" | xargs -P "$JOBS" -I{} bash -c 'run_one {}'

printf '%-18s %8s %12s %8s %8s %9s\n' harness seconds executions cov features findings
status=0
for h in "${harnesses[@]}"; do
  # The last fork-mode status line: "#EXECS: cov: C ft: F corp: N exec/s: E oom/timeout/crash: a/b/c time: Ts ..."
  last=$(grep -E '^#[0-9]+: cov: ' $B/logs/$h.log | tail -1)
  execs=$(echo "$last" | sed -E 's/^#([0-9]+):.*/\1/')
  cov=$(echo "$last" | sed -E 's/.* cov: ([0-9]+).*/\1/')
  ft=$(echo "$last" | sed -E 's/.* ft: ([0-9]+).*/\1/')
  secs=$(echo "$last" | sed -E 's/.* time: ([0-9]+)s.*/\1/')
  found=$(find $B/findings/$h -type f | wc -l)
  [ "$found" -eq 0 ] || status=1
  printf '%-18s %8s %12s %8s %8s %9s\n' "$h" "$secs" "$execs" "$cov" "$ft" "$found"
done
exit $status
