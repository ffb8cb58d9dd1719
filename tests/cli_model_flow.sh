#!/usr/bin/env bash
# The model commands end to end on the shared models: convert, info, generate, perplexity
# with saved logits and KL-divergence. Output is checked, not only exit codes.
set -euo pipefail
source "$(dirname "$0")/cli_setup.sh"

"$lowbit" convert "$shared/models/stories260K/stories260K.bin" "$out/s.gguf" 2>"$out/convert.log"
grep -q "wrote $out/s.gguf: 48 tensors" "$out/convert.log" || fail "convert summary: $(cat "$out/convert.log")"
"$lowbit" info "$out/s.gguf" --json > "$out/info.json"
grep -q '"name": "output.weight"' "$out/info.json" || fail "info lists output.weight"
grep -q '"n_kv_heads": 4' "$out/info.json" || fail "info shows the kv heads"

"$lowbit" generate "$out/s.gguf" -p "Once upon a time" -n 30 --temp 0 > "$out/gen.txt" 2>/dev/null
grep -q "Once upon a time, there was a little girl named Lily. She loved to play outside" "$out/gen.txt" || fail "greedy text: $(cat "$out/gen.txt")"
"$lowbit" generate "$out/s.gguf" -p "Once" -n 20 --temp 0.9 --top-k 40 --top-p 0.9 --seed 5 > "$out/a.txt" 2>/dev/null
"$lowbit" generate "$out/s.gguf" -p "Once" -n 20 --temp 0.9 --top-k 40 --top-p 0.9 --seed 5 > "$out/b.txt" 2>/dev/null
cmp -s "$out/a.txt" "$out/b.txt" || fail "same seed, different text"

"$lowbit" perplexity "$shared/models/stories260K/stories260K.bin" -f "$shared/data/tinystories-valid-30k.txt" -c 128 \
  --save-logits "$out/base.logits" > "$out/ppl.txt" 2>/dev/null
grep -q "PPL = 5.85" "$out/ppl.txt" || fail "perplexity: $(cat "$out/ppl.txt")"
"$lowbit" perplexity "$out/s.gguf" -f "$shared/data/tinystories-valid-30k.txt" -c 128 \
  --kl-divergence "$out/base.logits" > "$out/kld.txt" 2>/dev/null
grep -q "Mean KLD: 0.0000" "$out/kld.txt" || fail "KLD of the same weights via GGUF: $(cat "$out/kld.txt")"
grep -q "Same top token: 100.000" "$out/kld.txt" || fail "top-1 agreement: $(cat "$out/kld.txt")"

if "$lowbit" perplexity "$out/s.gguf" -f "$shared/data/shakespeare-test.txt" -c 128 --kl-divergence "$out/base.logits" 2>"$out/err.txt"; then
  fail "KLD against logits of another text was accepted"
fi
grep -q "other tokens" "$out/err.txt" || fail "mismatch message: $(cat "$out/err.txt")"
# KV caches: a per-row int8 cache stays close (any head size); q4_0 does not fit head size 8.
"$lowbit" perplexity "$out/s.gguf" -f "$shared/data/tinystories-valid-30k.txt" -c 128 --kv-cache int8 --kv-rotate \
  --kl-divergence "$out/base.logits" --json > "$out/kv.json" 2>/dev/null
grep -q '"kv_cache": "int8"' "$out/kv.json" || fail "perplexity --kv-cache json: $(cat "$out/kv.json")"
if "$lowbit" generate "$out/s.gguf" -p "Once" -n 4 --kv-cache q4_0 >/dev/null 2>"$out/err.txt"; then
  fail "a q4_0 KV cache with head size 8 was accepted"
fi
grep -q "q4_0 does not fit the head size (8 values" "$out/err.txt" || fail "KV cache message: $(cat "$out/err.txt")"
# tokenize: the oracle's ids from a tokenizer.json, and the tokenizer of a converted model.
tok="$shared/testdata/tokenizers/llama3"
"$lowbit" tokenize "$tok/tokenizer.json" -f "$shared/testdata/tokenizers/unicode-stress.txt" --ids -o "$out/ids.txt" 2>/dev/null
diff -q <(tr -s ' \n' '\n\n' < "$out/ids.txt") <(tr -s ' \n' '\n\n' < "$tok/stress.ids.txt") >/dev/null || fail "tokenize --ids differs from the llama3 oracle"
"$lowbit" tokenize "$out/s.gguf" -p "Once upon a time" --bos --json > "$out/tok.json"
grep -q '"count": 5' "$out/tok.json" || fail "tokenize --json of a GGUF model: $(cat "$out/tok.json")"
"$lowbit" tokenize "$out/s.gguf" -p "Once upon" > "$out/tok.txt" 2>/dev/null
grep -q "upon" "$out/tok.txt" || fail "tokenize pieces: $(cat "$out/tok.txt")"
if "$lowbit" tokenize "$tok/tokenizer.json" -f "$out/no-such.txt" 2>"$out/err.txt"; then fail "a missing text file was accepted"; fi
grep -q "no-such.txt" "$out/err.txt" || fail "missing-file message: $(cat "$out/err.txt")"
# convert --outtype goes through the quantize pipeline: stories260K's 172-wide rows fall back.
"$lowbit" convert "$shared/models/stories260K/stories260K.bin" -o "$out/s-q8.gguf" --outtype q8_0 2>"$out/conv.log" || fail "convert --outtype q8_0: $(cat "$out/conv.log")"
grep -q "fallback: blk.0.ffn_down.weight" "$out/conv.log" || fail "fallback report: $(cat "$out/conv.log")"

# A GPTQ export converts to GGUF q4_0 without requantization; AWQ (asymmetric) to q4_1.
sh4m="$shared/models/shakespeare-llama-4m"
"$lowbit" quantize "$sh4m" "$out/gptq" -f int4_g32_sym --export gptq > /dev/null 2>&1
grep -q '"quant_method": "gptq"' "$out/gptq/config.json" || fail "GPTQ export config"
[ -f "$out/gptq/quantize_config.json" ] || fail "GPTQ export has no quantize_config.json"
"$lowbit" convert "$out/gptq" -o "$out/gptq.gguf" --json > "$out/gptq-conv.json" 2>/dev/null
grep -q '"int4_g32_sym -> q4_0": 28' "$out/gptq-conv.json" || fail "lossless GPTQ -> q4_0: $(cat "$out/gptq-conv.json")"
grep -q '"requantized": \[\]' "$out/gptq-conv.json" || fail "nothing requantized: $(cat "$out/gptq-conv.json")"
"$lowbit" quantize "$sh4m" "$out/awq" -f int4_g64_asym --export awq > /dev/null 2>&1
"$lowbit" convert "$out/awq" -o "$out/awq.gguf" --json > "$out/awq-conv.json" 2>/dev/null
grep -q 'q4_1 (mins rounded)' "$out/awq-conv.json" || fail "AWQ -> q4_1 report: $(cat "$out/awq-conv.json")"
if "$lowbit" quantize "$sh4m" "$out/bad" -f q4_k --export gptq 2>"$out/err.txt"; then fail "--export gptq accepted q4_k"; fi
grep -q "intN group formats" "$out/err.txt" || fail "export format message: $(cat "$out/err.txt")"
echo "cli model flow: all checks passed"
