#!/usr/bin/env bash
# sensitivity / quantize --target-size end to end on shakespeare-llama-4m (few windows):
# sens.json written, a GGUF within the target with its plan summary, the emitted recipe,
# and refusals (a target below the smallest plan, another model's sensitivities) that
# leave no output behind.
set -euo pipefail
source "$(dirname "$0")/cli_setup.sh"
m=$shared/models/shakespeare-llama-4m
calib=$shared/data/shakespeare-calib.txt
small=(--calib-samples 2 --calib-len 32)

"$lowbit" sensitivity --help > "$out/help.txt"
for o in --calib --formats --calib-samples --proxy-only --json -o; do grep -q -- "$o" "$out/help.txt" || fail "sensitivity --help lists $o"; done
"$lowbit" sensitivity "$m" --calib "$calib" -o "$out/sens.json" --formats q2_k,q4_k,q8_0 "${small[@]}" 2> "$out/sens.err"
"$lowbit" sensitivity "$m" --calib "$calib" -o "$out/sens-gptq.json" --formats q2_k,q8_0 --method gptq "${small[@]}" 2>/dev/null
grep -q '"method": "gptq"' "$out/sens-gptq.json" || fail "sensitivity --method gptq recorded"
grep -q "sensitivity: 90/90 choices" "$out/sens.err" || fail "sensitivity progress: $(cat "$out/sens.err")"
grep -q '"lowbit_sensitivity": 1' "$out/sens.json" || fail "sens.json: $(head -c 300 "$out/sens.json")"
grep -q "proxy vs KLD rank correlation, q4_k" "$out/sens.err" || fail "rank correlation printed: $(cat "$out/sens.err")"

"$lowbit" quantize "$m" "$out/mix.gguf" --target-size 2.4MB --sens "$out/sens.json" --emit-recipe "$out/plan.json" 2> "$out/mix.err"
size=$(stat -c %s "$out/mix.gguf")
(( size <= 2400000 )) || fail "file over the target: $size"
grep -q "blk.3 " "$out/mix.err" || fail "per-layer summary: $(cat "$out/mix.err")"
grep -q "predicted cost" "$out/mix.err" || fail "plan summary: $(cat "$out/mix.err")"
grep -q "held at q8_0 .*calibration KLD" "$out/mix.err" || fail "measured branches in the summary: $(cat "$out/mix.err")"
grep -q "<- chosen" "$out/mix.err" || fail "the chosen branch marked: $(cat "$out/mix.err")"
"$lowbit" quantize "$m" "$out/again.gguf" -r "$out/plan.json" 2>/dev/null
cmp -s "$out/mix.gguf" "$out/again.gguf" || fail "the emitted recipe gives another file"
# Without --sens, measured on --calib over --formats; JSON summary.
"$lowbit" quantize "$m" "$out/mix2" --target-bpw 5 --calib "$calib" --sens-samples 2 --sens-len 32 --formats q4_k,q8_0 --json > "$out/mix2.json" 2>/dev/null
grep -q '"mix"' "$out/mix2.json" || fail "quantize --json has the plan: $(cat "$out/mix2.json")"

if "$lowbit" quantize "$m" "$out/bad.gguf" --target-size 100KB --sens "$out/sens.json" 2> "$out/bad.err"; then fail "100 KB accepted"; fi
grep -q "below the smallest plan" "$out/bad.err" || fail "too small a target: $(cat "$out/bad.err")"
if "$lowbit" quantize "$shared/models/tinystories-656k" "$out/bad2.gguf" --target-bpw 6 --sens "$out/sens.json" 2> "$out/bad2.err"; then fail "another model's sensitivities accepted"; fi
grep -q "measured on another model" "$out/bad2.err" || fail "another model: $(cat "$out/bad2.err")"
[[ ! -e "$out/bad.gguf" && ! -e "$out/bad2.gguf" ]] || fail "a refused run left output"
echo "cli mix flow ok"
