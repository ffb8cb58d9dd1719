#!/usr/bin/env bash
# quantize / imatrix / recipes / eval end to end, and an interrupted quantize (SIGKILL in
# the middle of writing) leaving no file under the output's name.
set -euo pipefail
source "$(dirname "$0")/cli_setup.sh"
synth=$3
m=$shared/models/stories260K/stories260K.bin

# (Output goes to files first: `lowbit | grep -q` under pipefail fails when grep exits
# before lowbit has finished writing.)
"$lowbit" recipes > "$out/recipes.txt"
grep -q "^q4_k_m: " "$out/recipes.txt" || fail "recipes lists q4_k_m"
"$lowbit" recipes --json > "$out/recipes.json"
grep -q '"layers": "more-bits"' "$out/recipes.json" || fail "recipes --json shows the rules"

# stories260K's 172-wide ffn_down fits no 32-block format: q8_0 falls back to f16, never fails.
"$lowbit" quantize "$m" "$out/q8.gguf" --format q8_0 --json > "$out/q8.json" 2> "$out/q8.err"
grep -q '"q8_0"' "$out/q8.json" || fail "q8_0 in the summary"
grep -q 'ffn_down.weight: base: q8_0 needs rows of a multiple of 32, this tensor has 172 -> f16' "$out/q8.json" || fail "fallback reported: $(cat "$out/q8.json")"
grep -q "quantize: 48/48 tensors" "$out/q8.err" || fail "progress line: $(cat "$out/q8.err")"

"$lowbit" imatrix "$m" -f "$shared/data/tinyshakespeare.txt" -c 128 --chunks 8 -o "$out/im.gguf" 2> "$out/im.err"
grep -q "wrote $out/im.gguf: 35 entries from 8 chunks" "$out/im.err" || fail "imatrix: $(cat "$out/im.err")"
"$lowbit" quantize "$m" "$out/q4.gguf" --recipe q4_k_m --imatrix "$out/im.gguf" 2> "$out/q4.err"
grep -q "total" "$out/q4.err" || fail "quantize summary: $(cat "$out/q4.err")"

"$lowbit" eval "$m" "$out/q8.gguf" "$out/q4.gguf" -f "$shared/data/tinystories-valid-30k.txt" -c 128 --chunks 20 --markdown > "$out/eval.md" 2>/dev/null
grep -q "| model " "$out/eval.md" || fail "eval table header: $(cat "$out/eval.md")"
grep -q "q4.gguf" "$out/eval.md" || fail "eval row: $(cat "$out/eval.md")"

# Interrupted: kill -9 once the temporary file exists; nothing may appear under the name.
"$lowbit" quantize "$synth" "$out/big.gguf" --recipe q4_k_m 2>/dev/null &
pid=$!
for _ in $(seq 1 600); do
  ls "$out"/big.gguf.tmp.* > /dev/null 2>&1 && break
  sleep 0.02
done
ls "$out"/big.gguf.tmp.* > /dev/null 2>&1 || fail "the quantize never started writing"
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
[ ! -e "$out/big.gguf" ] || fail "a killed quantize left $out/big.gguf"
# The next write to the same name removes the dead writer's temporary.
"$lowbit" quantize "$m" "$out/big.gguf" --recipe q8_0 2>/dev/null || fail "quantize after a kill"
! ls "$out"/big.gguf.tmp.* > /dev/null 2>&1 || fail "a stale temporary survived: $(ls "$out"/big.gguf.tmp.*)"
echo "cli quantize flow: all checks passed"
