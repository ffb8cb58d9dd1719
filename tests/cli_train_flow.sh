#!/usr/bin/env bash
# finetune / merge / qat end to end on shakespeare-llama-4m with a few steps each: the
# adapter folder, the merged folder, a run with --lora, QAT into an intN folder, into GGUF
# through the exact ggml twin (int4 groups of 32 -> q4_0) and through a k-quant's own
# quantizer; and refusals that leave no output behind.
set -euo pipefail
source "$(dirname "$0")/cli_setup.sh"
m=$shared/models/shakespeare-llama-4m
data=$shared/data/shakespeare-calib.txt
short=(--steps 2 --batch 1 --seq-len 32)
block=(--samples 4 --block-seq-len 32 --block-epochs 1)

"$lowbit" finetune "$m" --data "$data" -o "$out/adapter" "${short[@]}" --json > "$out/ft.json" 2> "$out/ft.err"
grep -q '"trainable_parameters"' "$out/ft.json" || fail "finetune --json: $(cat "$out/ft.json")"
grep -q "finetune: 2/2 steps" "$out/ft.err" || fail "finetune progress: $(cat "$out/ft.err")"
[[ -f "$out/adapter/adapter_model.safetensors" && -f "$out/adapter/adapter_config.json" ]] || fail "PEFT adapter files"
"$lowbit" merge "$m" "$out/adapter" -o "$out/merged" --dtype bf16 2> "$out/merge.err"
"$lowbit" info "$out/merged" > "$out/merged.txt"
grep -q "blk.0.attn_q.weight .* bf16" "$out/merged.txt" || fail "merged folder in bf16: $(head -20 "$out/merged.txt")"
"$lowbit" generate "$m" --lora "$out/adapter" -p "ROMEO:" -n 4 > "$out/gen.txt" 2>/dev/null
grep -q "ROMEO:" "$out/gen.txt" || fail "generate --lora: $(cat "$out/gen.txt")"

"$lowbit" qat --help > "$out/help.txt"
for o in --format --data --method --loss --samples --block-epochs --weight-lr --scale-lr --steps --checkpointing --json; do
  grep -q -- "$o" "$out/help.txt" || fail "qat --help lists $o"
done
"$lowbit" qat "$m" -f int3_g64_asym --data "$data" -o "$out/q3" "${block[@]}" "${short[@]}" --json > "$out/q3.json" 2> "$out/q3.err"
grep -q '"block_mse_trained"' "$out/q3.json" || fail "qat --json: $(cat "$out/q3.json")"
grep -q "qat block 4/4" "$out/q3.err" || fail "qat progress per block: $(cat "$out/q3.err")"
"$lowbit" info "$out/q3" > "$out/q3.txt"
grep -q "blk.3.ffn_down.weight .* int3_g64_asym" "$out/q3.txt" || fail "qat folder in int3_g64_asym: $(cat "$out/q3.txt")"
grep -q "token_embd.weight .* f16" "$out/q3.txt" || fail "token_embd in f16: $(cat "$out/q3.txt")"
"$lowbit" qat "$m" -f int4_g32_sym --data "$data" -o "$out/q4.gguf" "${block[@]}" "${short[@]}" --checkpointing 2>/dev/null
"$lowbit" info "$out/q4.gguf" > "$out/q4.txt"
grep -q "blk.1.attn_k.weight .* q4_0" "$out/q4.txt" || fail "int4_g32_sym written as q4_0: $(cat "$out/q4.txt")"
"$lowbit" qat "$m" -f q4_k --method ste --data "$data" -o "$out/k.gguf" "${short[@]}" 2>/dev/null
"$lowbit" info "$out/k.gguf" > "$out/k.txt"
grep -q "blk.0.ffn_up.weight .* q4_k" "$out/k.txt" || fail "ste into q4_k: $(cat "$out/k.txt")"

# Refusals: no output file, the reason named.
if "$lowbit" qat "$m" -f q4_k --data "$data" -o "$out/bad.gguf" 2> "$out/bad.err"; then fail "efficientqat into q4_k accepted"; fi
grep -q "method ste" "$out/bad.err" || fail "efficientqat into q4_k: $(cat "$out/bad.err")"
echo "to be" > "$out/short.txt"
if "$lowbit" qat "$m" -f int3_g64_asym --data "$out/short.txt" -o "$out/bad2" 2> "$out/bad2.err"; then fail "short data accepted"; fi
grep -q "short.txt.*fewer tokens than one Block-AP window" "$out/bad2.err" || fail "short data: $(cat "$out/bad2.err")"
if "$lowbit" qat "$m" -f int3_g64_asym --method lsq --data "$data" -o "$out/bad3" 2> "$out/bad3.err"; then fail "unknown method accepted"; fi
grep -q "unknown QAT method (efficientqat, ste)" "$out/bad3.err" || fail "unknown method: $(cat "$out/bad3.err")"
[[ ! -e "$out/bad.gguf" && ! -e "$out/bad2" && ! -e "$out/bad3" ]] || fail "a refused run left output"
echo "cli train flow ok"
