#!/usr/bin/env bash
# mpirun -np 2 on this machine (loopback): imatrix with its chunks shared between two ranks
# writes the same bytes as one process, an odd chunk count included, and so does
# sensitivity with its matrices shared, and perplexity and eval with their chunks shared
# give the same numbers; quantize --method gptq|awq with a layer range per rank writes the
# same file; rank 0 alone writes and prints; a failing rank ends
# the run with an error instead of a hang.
set -euo pipefail
source "$(dirname "$0")/cli_setup.sh"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
# Under AddressSanitizer (make test-sanitize): Open MPI's own allocations outlive
# MPI_Finalize in components it has unloaded, which no suppression can name, so the leak
# check is off for this script. The single-process paths are leak-checked elsewhere.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
command -v mpirun > /dev/null || fail "mpirun not found (scripts/install-deps.sh installs openmpi-bin)"
mpi=(mpirun -np 2 --oversubscribe --mca btl self,tcp --mca btl_tcp_if_include lo)
model=$shared/models/shakespeare-llama-4m
text=$shared/data/shakespeare-calib.txt

for chunks in 7 8; do
  "$lowbit" imatrix "$model" -f "$text" -o "$out/one-$chunks.gguf" -c 128 --chunks $chunks 2> /dev/null
  "${mpi[@]}" "$lowbit" imatrix "$model" -f "$text" -o "$out/two-$chunks.gguf" -c 128 --chunks $chunks --json > "$out/two.json" 2> "$out/two.err"
  cmp "$out/one-$chunks.gguf" "$out/two-$chunks.gguf" || fail "imatrix of $chunks chunks on 2 ranks differs from 1 process"
  [ "$(grep -c '"entries"' "$out/two.json")" -eq 1 ] || fail "the JSON summary should come from rank 0 alone: $(cat "$out/two.json")"
  [ "$(grep -c '^wrote' "$out/two.err")" -eq 1 ] || fail "one 'wrote' line expected: $(cat "$out/two.err")"
done

# sensitivity: the matrices shared between two ranks, the same sens.json.
sens=(sensitivity "$model" --calib "$text" --formats q4_k,q8_0 --calib-samples 2 --calib-len 64)
"$lowbit" "${sens[@]}" -o "$out/s1.json" 2> /dev/null
"${mpi[@]}" "$lowbit" "${sens[@]}" -o "$out/s2.json" 2> /dev/null
cmp "$out/s1.json" "$out/s2.json" || fail "sensitivity on 2 ranks differs from 1 process"

# eval and perplexity: the chunks shared, every number the same to the last digit (the
# timings and memory aside); the base logits each rank saved are removed.
ppl=(perplexity "$model" -f "$shared/data/shakespeare-test.txt" -c 128 --chunks 5 --json)
"$lowbit" "${ppl[@]}" 2> /dev/null | grep -v "second\|rss" > "$out/p1.json"
"${mpi[@]}" "$lowbit" "${ppl[@]}" 2> /dev/null | grep -v "second\|rss" > "$out/p2.json"
grep -q '"ppl"' "$out/p1.json" || fail "no perplexity: $(cat "$out/p1.json")"
diff "$out/p1.json" "$out/p2.json" || fail "perplexity on 2 ranks differs from 1 process"
"$lowbit" quantize "$model" "$out/q.gguf" --recipe q4_k_m 2> /dev/null
evl=(eval "$model" "$out/q.gguf" -f "$shared/data/shakespeare-test.txt" -c 128 --chunks 7 --gen-tokens 4 --json)
"$lowbit" "${evl[@]}" 2> /dev/null | grep -v "second\|rss" > "$out/e1.json"
TMPDIR=$out "${mpi[@]}" "$lowbit" "${evl[@]}" 2> /dev/null | grep -v "second\|rss" > "$out/e2.json"
grep -q '"kld_mean"' "$out/e1.json" || fail "no KLD: $(cat "$out/e1.json")"
diff "$out/e1.json" "$out/e2.json" || fail "eval on 2 ranks differs from 1 process"
[ -z "$(ls "$out" | grep '^lowbit-eval')" ] || fail "eval left its logits: $(ls "$out")"

# quantize --method gptq: a layer range per rank (4 blocks over 2, 3 and 5 ranks: one rank
# with none), the block inputs handed on, rank 0 writing: the one-process file, byte for
# byte; AWQ into an exported folder the same.
gptq=(quantize "$model" --recipe q4_k_m --method gptq --calib "$text" --calib-samples 8 --calib-len 128)
"$lowbit" "${gptq[@]}" "$out/g1.gguf" 2> /dev/null
for n in 2 3 5; do
  mpirun -np $n --oversubscribe --mca btl self,tcp --mca btl_tcp_if_include lo "$lowbit" "${gptq[@]}" "$out/g$n.gguf" 2> /dev/null
  cmp "$out/g1.gguf" "$out/g$n.gguf" || fail "GPTQ on $n ranks differs from 1 process"
done
awq=(quantize "$model" --recipe pure:int4_g128_asym --method awq --export awq --calib "$text" --calib-samples 8 --calib-len 128)
"$lowbit" "${awq[@]}" "$out/w1" 2> /dev/null
"${mpi[@]}" "$lowbit" "${awq[@]}" "$out/w2" 2> /dev/null
diff -r "$out/w1" "$out/w2" || fail "AWQ on 2 ranks differs from 1 process"

# A bad input on every rank: an error and a non-zero exit, not a hang.
status=0
timeout 60 "${mpi[@]}" "$lowbit" imatrix "$model" -f "$out/missing.txt" -o "$out/x.gguf" 2> "$out/err" > /dev/null || status=$?
[ "$status" -ne 0 ] && [ "$status" -ne 124 ] || fail "a failing mpirun run: exit $status"
grep -q "missing.txt" "$out/err" || fail "the error names the file: $(cat "$out/err")"

# A perplexity checkpoint is one process's: under mpirun, a clear refusal, not a hang.
status=0
timeout 60 "${mpi[@]}" "$lowbit" "${ppl[@]}" --checkpoint "$out/ck" 2> "$out/err" > /dev/null || status=$?
[ "$status" -ne 0 ] && [ "$status" -ne 124 ] || fail "perplexity --checkpoint under mpirun: exit $status"
grep -q "without mpirun" "$out/err" || fail "the refusal says why: $(cat "$out/err")"
echo "cli_mpi: ok"
