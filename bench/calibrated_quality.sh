#!/usr/bin/env bash
# Quality of the calibrated methods against RTN at the same bytes, measured with one
# `lowbit eval` per model (docs/PERF.md, "Calibrated methods"):
#   - intN (GPTQ/AWQ layout): block linears in int3_g64 / int4_g128, embeddings and output
#     in f16 (GPTQModel's layout): rtn, gptq, awq, awq+gptq;
#   - GGUF recipes q2_k, q3_k_m, q4_k_m, q5_k_m: rtn + imatrix (llama.cpp's way) against
#     gptq, awq and awq+gptq (each also given the imatrix, for token_embd and output).
# Usage: bench/calibrated_quality.sh MODEL CALIB_TEXT EVAL_TEXT CTX OUT_DIR [SAMPLES]
set -euo pipefail
model=$1 calib=$2 eval_text=$3 ctx=$4 out=$5 samples=${6:-128}
lowbit=${LOWBIT:-build/lowbit}
mkdir -p "$out"
q() { "$lowbit" quantize "$model" -o "$@" --calib-samples "$samples" 2>/dev/null >/dev/null; }
"$lowbit" imatrix "$model" -f "$calib" -o "$out/imatrix.gguf" -c "$ctx" 2>/dev/null
files=()
source "$(dirname "$0")/intn_ptq.sh"
for f in int3_g64_asym int4_g128_asym; do
  SAMPLES=$samples intn_ptq "$model" "$calib" "$out" "$f"
  files+=("$out/$f-rtn" "$out/$f-gptq" "$out/$f-awq" "$out/$f-awq+gptq")
done
for r in q2_k q3_k_m q4_k_m q5_k_m; do
  im=(--imatrix "$out/imatrix.gguf")
  q "$out/$r-rtn-imatrix.gguf" -r "$r" "${im[@]}"
  q "$out/$r-gptq.gguf" -r "$r" "${im[@]}" --method gptq --calib "$calib"
  q "$out/$r-awq.gguf" -r "$r" "${im[@]}" --method awq --calib "$calib"
  q "$out/$r-awq+gptq.gguf" -r "$r" "${im[@]}" --method awq -O gptq=true --calib "$calib"
  files+=("$out/$r-rtn-imatrix.gguf" "$out/$r-gptq.gguf" "$out/$r-awq.gguf" "$out/$r-awq+gptq.gguf")
done
"$lowbit" eval "$model" "${files[@]}" -f "$eval_text" -c "$ctx" --gen-tokens 0 --markdown 2>/dev/null
