#!/usr/bin/env bash
# bench/out_of_core.sh: quantizes a model about twice the size of the memory the process may
# use, with RTN and with GPTQ, and reports each run's peak resident memory (the process's
# own, from `quantize --json`) and the memory cgroup's peak (page cache included) against
# the limit. The limit is a cgroup v1 memory group where /sys/fs/cgroup/memory is writable
# (root), else `systemd-run --scope -p MemoryMax=`. A run the limit kills shows as such.
#   LIMIT_MB=900 SHAPE=tinyllama-1.1b LAYERS=8 SAMPLES=16 bench/out_of_core.sh [build/lowbit]
set -euo pipefail
lowbit=$(realpath "${1:-build/lowbit}")
shared=$(realpath "${SHARED:-../shared}")
limit_mb=${LIMIT_MB:-900}
shape=${SHAPE:-tinyllama-1.1b}
layers=${LAYERS:-8}
samples=${SAMPLES:-16}
work=${WORK:-/tmp/lowbit-out-of-core}
mkdir -p "$work"
model=$work/$shape-$layers-layers-f32.gguf
[ -f "$model" ] || "$lowbit" synth -s "$shape" --layers "$layers" -f f32 -o "$model" > /dev/null
model_mb=$(( $(stat -c %s "$model") >> 20 ))
echo "model $model: $model_mb MiB (f32), limit $limit_mb MiB ($(awk "BEGIN{printf \"%.2f\", $model_mb / $limit_mb}")x), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"

# limited NAME COMMAND...: runs COMMAND under the memory limit; sets cgroup_peak_mb and status.
limited() {
  local name=$1
  shift
  status=0
  if [ -w /sys/fs/cgroup/memory ]; then
    local cg=/sys/fs/cgroup/memory/lowbit-ooc-$$-$name
    mkdir "$cg"
    echo $((limit_mb << 20)) > "$cg/memory.limit_in_bytes"
    bash -c 'echo $$ > "$1/cgroup.procs"; shift; exec "$@"' limited "$cg" "$@" || status=$?
    cgroup_peak_mb=$(( $(cat "$cg/memory.max_usage_in_bytes") >> 20 ))
    rmdir "$cg"
  else
    systemd-run --scope --quiet -p MemoryMax="${limit_mb}M" "$@" || status=$?
    cgroup_peak_mb=-
  fi
}

printf "| method | output | seconds | peak RSS MiB | cgroup peak MiB (page cache incl.) | limit MiB | result |\n|---|---|---|---|---|---|---|\n"
for method in rtn gptq; do
  out=$work/$shape-q4_k_m-$method.gguf
  rm -f "$out"
  args=(quantize "$model" "$out" --recipe q4_k_m --json)
  [ "$method" = gptq ] && args+=(--method gptq --calib "$shared/data/tinystories-valid-30k.txt" --calib-samples "$samples" --calib-len 512)
  start=$(date +%s.%N)
  limited "$method" "$lowbit" "${args[@]}" > "$work/$method.json" 2> "$work/$method.err"
  seconds=$(awk "BEGIN{printf \"%.0f\", $(date +%s.%N) - $start}")
  if [ "$status" -eq 0 ]; then
    rss=$(python3 -c "import json; print(json.load(open('$work/$method.json'))['peak_rss_bytes'] >> 20)")
    result="ok, $(( $(stat -c %s "$out") >> 20 )) MiB written"
  else
    rss=-
    result="exit $status$([ "$status" -eq 137 ] && echo ' (killed: over the limit)')"
  fi
  printf "| %s | q4_k_m | %s | %s | %s | %s | %s |\n" "$method" "$seconds" "$rss" "$cgroup_peak_mb" "$limit_mb" "$result"
done
