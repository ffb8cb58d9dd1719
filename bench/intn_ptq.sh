# Sourced by the quality benches: intn_ptq MODEL CALIB OUT FORMAT quantizes the block
# linears into FORMAT (token_embd and output f16, GPTQModel's layout) by RTN, GPTQ, AWQ and
# AWQ + GPTQ (64 calibration windows) into OUT/FORMAT-{rtn,gptq,awq,awq+gptq}.
intn_ptq() {
  local model=$1 calib=$2 out=$3 f=$4 r="$3/$4.json"
  local q=("${LOWBIT:-build/lowbit}" quantize "$model" --calib-samples "${SAMPLES:-64}" -r "$r")
  echo "{\"name\": \"$f-linears\", \"base\": \"$f\", \"rules\": [{\"tensor\": \"token_embd\", \"format\": \"f16\"}, {\"tensor\": \"output\", \"format\": \"f16\"}]}" > "$r"
  rm -rf "$out/$f-"*/
  "${q[@]}" -o "$out/$f-rtn" > /dev/null 2>&1
  "${q[@]}" -o "$out/$f-gptq" --method gptq --calib "$calib" > /dev/null 2>&1
  "${q[@]}" -o "$out/$f-awq" --method awq --calib "$calib" > /dev/null 2>&1
  "${q[@]}" -o "$out/$f-awq+gptq" --method awq -O gptq=true --calib "$calib" > /dev/null 2>&1
}
