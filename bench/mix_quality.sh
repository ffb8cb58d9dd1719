#!/usr/bin/env bash
# Mixed precision by measurement against lowbit's llama.cpp recipes at the same file size
# (docs/PERF.md, "Mixed precision"): sensitivities measured once (lowbit sensitivity), then
# for each recipe its GGUF (RTN, and GPTQ) and a searched plan (--target-size = the recipe's
# file size; RTN on the RTN sensitivities, GPTQ on sensitivities measured with GPTQ), all in
# one `lowbit eval` run with a KLD-against-size plot. Plans branch on the BRANCH (default 1)
# largest matrices, measured on the calibration text (quantize --branch).
# Usage: bench/mix_quality.sh MODEL CALIB_TEXT EVAL_TEXT CTX OUT_DIR PLOT.svg [RECIPES...]
set -euo pipefail
model=$1 calib=$2 eval_text=$3 ctx=$4 out=$5 plot=$6
shift 6
recipes=("$@")
[[ ${#recipes[@]} -gt 0 ]] || recipes=(q2_k q3_k_s q3_k_m q4_k_s q4_k_m q5_k_m)
lowbit=${LOWBIT:-build/lowbit}
mkdir -p "$out"
"$lowbit" sensitivity "$model" --calib "$calib" -o "$out/sens.json" --calib-samples "${SENS_SAMPLES:-16}" \
    --formats "${FORMATS:-q2_k,q3_k,q4_k,q5_k,q6_k,q8_0,iq4_xs}" 2> "$out/sens.log"
grep "rank correlation" "$out/sens.log"
"$lowbit" sensitivity "$model" --calib "$calib" -o "$out/sens-gptq.json" --calib-samples "${SENS_SAMPLES:-16}" --method gptq \
    --formats "${FORMATS:-q2_k,q3_k,q4_k,q5_k,q6_k,q8_0,iq4_xs}" 2> /dev/null
gptq=(--method gptq --calib "$calib" --calib-samples 64)
branch=(--branch "${BRANCH:-1}")
files=()
for r in "${recipes[@]}"; do
  "$lowbit" quantize "$model" "$out/$r.gguf" -r "$r" > /dev/null 2>&1
  "$lowbit" quantize "$model" "$out/$r-gptq.gguf" -r "$r" "${gptq[@]}" > /dev/null 2>&1
  size=$(stat -c %s "$out/$r.gguf")
  "$lowbit" quantize "$model" "$out/mix-$r.gguf" --target-size "$size" --sens "$out/sens.json" --emit-recipe "$out/mix-$r.json" \
      --calib "$calib" "${branch[@]}" > /dev/null 2>&1
  "$lowbit" quantize "$model" "$out/mix-$r-gptq.gguf" --target-size "$size" --sens "$out/sens-gptq.json" "${gptq[@]}" \
      "${branch[@]}" > /dev/null 2>&1
  echo "$r: $size bytes; mix $(stat -c %s "$out/mix-$r.gguf"), mix+gptq $(stat -c %s "$out/mix-$r-gptq.gguf")"
  files+=("$out/$r.gguf" "$out/mix-$r.gguf" "$out/$r-gptq.gguf" "$out/mix-$r-gptq.gguf")
done
"$lowbit" eval "$model" "${files[@]}" -f "$eval_text" -c "$ctx" --gen-tokens 0 --markdown --plot "$plot" 2>/dev/null
