#!/usr/bin/env bash
# Regenerates the small seed corpora in fuzz/corpus/ (committed; run by hand, not by CI).
# usage: fuzz/make_seeds.sh BUILD_DIR SHARED_DIR   (BUILD_DIR holds lowbit and make_synthetic_model)
set -euo pipefail
B=$1; S=$2; C=$(cd "$(dirname "$0")" && pwd)/corpus; T=$(mktemp -d); trap 'rm -rf $T' EXIT
mkdir -p $C/{gguf,safetensors,config_json,tokenizer_json,tokenizer_model,llama2c,llama2c_tokenizer,imatrix,recipe,model}

# A tiny Llama (byte-level tokenizer) as an HF folder and as GGUF in two formats.
$B/make_synthetic_model $T/tiny --dim 32 --hidden 64 --layers 1 --heads 2 --kv-heads 1 --vocab 260 >/dev/null
$B/lowbit convert $T/tiny -o $C/model/tiny-f16.gguf 2>/dev/null
$B/lowbit convert $T/tiny -o $C/model/tiny-q8_0.gguf --outtype q8_0 2>/dev/null
cp $C/model/tiny-q8_0.gguf $C/gguf/
cp $T/tiny/config.json $C/config_json/synthetic.json
cp $T/tiny/tokenizer.json $C/tokenizer_json/byte-level.json
cp $S/models/tinystories-656k/config.json $C/config_json/tinystories-656k.json
cp $S/models/shakespeare-llama-4m/config.json $C/config_json/shakespeare-llama-4m.json
cp $S/models/tinystories-656k/tokenizer.json $C/tokenizer_json/tinystories-656k.json
cp $S/models/shakespeare-llama-4m/tokenizer.model $C/tokenizer_model/shakespeare.model
cp $S/models/stories260K/tok512.bin $C/llama2c_tokenizer/

# safetensors: every float dtype, one tensor each, plus metadata.
python3 - "$C/safetensors" <<'PY'
import json, struct, sys
out = sys.argv[1]
for dtype, size in [("F32", 4), ("F16", 2), ("BF16", 2), ("U8", 1), ("I64", 8)]:
    data = bytes(range(6 * size))
    header = {"__metadata__": {"format": "pt"}, "w": {"dtype": dtype, "shape": [2, 3], "data_offsets": [0, len(data)]}}
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    open(f"{out}/{dtype.lower()}.safetensors", "wb").write(struct.pack("<Q", len(text)) + text + data)

# llama2.c: a tiny checkpoint that fits the 512-token stories260K tokenizer.
dim, hidden, layers, heads, kv, vocab, seq = 8, 16, 1, 2, 2, 512, 8
head = dim // heads
n = (vocab * dim + layers * dim + 2 * layers * dim * dim + 2 * layers * kv * head * dim + layers * dim
     + 3 * layers * dim * hidden + dim + seq * head)
hdr = struct.pack("<7i", dim, hidden, layers, heads, kv, vocab, seq)
floats = struct.pack(f"<{n}f", *[((i * 7919) % 200 - 100) / 1000 for i in range(n)])
open(f"{sys.argv[1]}/../llama2c/tiny.bin", "wb").write(hdr + floats)

# Legacy imatrix .dat: two entries, then the chunk count and dataset name.
body = struct.pack("<i", 2)
for name, nval in [("blk.0.attn_q.weight", 8), ("blk.0.ffn_down.weight", 16)]:
    body += struct.pack("<i", len(name)) + name.encode() + struct.pack("<ii", 10, nval)
    body += struct.pack(f"<{nval}f", *[0.5 + i for i in range(nval)])
body += struct.pack("<i", 3) + struct.pack("<i", 4) + b"text"
open(f"{sys.argv[1]}/../imatrix/legacy.dat", "wb").write(body)
PY
$B/lowbit imatrix $C/model/tiny-f16.gguf -f $S/data/tinystories-sample-4k.txt -c 16 --chunks 2 -o $C/imatrix/tiny.gguf 2>/dev/null

cat > $C/recipe/mix.json <<'R'
{"name": "mix", "description": "d", "base": "q4_k", "rules": [{"tensor": "output", "format": "q6_k"},
 {"tensor": "attn_v", "layers": "more-bits", "format": "q6_k"}, {"tensor": "ffn_down", "layers": "first:1/8", "format": "q5_k"},
 {"tensor": "ffn_*", "layers": "last:1/4", "format": "q8_0"}, {"tensor": "attn_?", "layers": "0-3,7,9-10", "format": "keep"}]}
R
echo '{"base": "q8_0"}' > $C/recipe/minimal.json
echo "seeds written to $C"
