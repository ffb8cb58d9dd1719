#!/usr/bin/env bash
# Quantization-aware training against the post-training methods at the same format and
# bytes (docs/PERF.md, "QAT"): for each intN format, the block linears by RTN, GPTQ, AWQ,
# AWQ + GPTQ (token_embd and output in f16, GPTQModel's layout) and by `lowbit qat`
# (EfficientQAT with the distillation loss, and with the paper's next-token loss), all in
# one `lowbit eval` run against the float model. Training times come from qat --json.
# Usage: bench/qat_quality.sh MODEL CALIB_TEXT EVAL_TEXT CTX OUT_DIR [FORMATS...]
set -euo pipefail
model=$1 calib=$2 eval_text=$3 ctx=$4 out=$5
shift 5
formats=("${@:-int2_g64_asym int3_g64_asym}")
read -r -a formats <<< "${formats[*]}"
lowbit=${LOWBIT:-build/lowbit}
mkdir -p "$out"
source "$(dirname "$0")/intn_ptq.sh"
files=()
for f in "${formats[@]}"; do
  intn_ptq "$model" "$calib" "$out" "$f"
  for loss in kd ce; do
    "$lowbit" qat "$model" -f "$f" --data "$calib" -o "$out/$f-efficientqat-$loss" --loss "$loss" --json 2>/dev/null > "$out/$f-efficientqat-$loss.json"
    python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print(f\"{sys.argv[2]}: Block-AP {j['block_ap_seconds']:.1f} s, E2E-QP {j['e2e_seconds']:.1f} s ({j['e2e_tokens_per_second']:.0f} tokens/s)\")" \
      "$out/$f-efficientqat-$loss.json" "$f-efficientqat-$loss"
  done
  files+=("$out/$f-rtn" "$out/$f-gptq" "$out/$f-awq" "$out/$f-awq+gptq" "$out/$f-efficientqat-kd" "$out/$f-efficientqat-ce")
done
"$lowbit" eval "$model" "${files[@]}" -f "$eval_text" -c "$ctx" --gen-tokens 0 --markdown 2>/dev/null
