#!/usr/bin/env bash
# Output failures: a file-size limit (ulimit -f; any user), a full disk and a read-only
# folder (a 1 MiB tmpfs; where mount is permitted, root in CI) each give a clear error
# naming the output, a non-zero exit, and nothing under the final name and no temporary
# left beside it, for .gguf files and folders. Then quantize --resume on the CLI.
set -euo pipefail
source "$(dirname "$0")/cli_setup.sh"
model=$shared/models/shakespeare-llama-4m

# expect_clean_failure DIR OUTPUT PATTERN: quantize into DIR/OUTPUT fails with PATTERN, DIR stays empty.
expect_clean_failure() {
  local dir=$1 output=$2 pattern=$3 status=0
  shift 3
  "$@" "$lowbit" quantize "$model" "$dir/$output" --recipe q8_0 2> "$out/err" > /dev/null || status=$?
  [ "$status" -ne 0 ] || fail "$output in $dir: exit 0"
  [ "$status" -lt 128 ] || fail "$output in $dir: killed by signal $((status - 128))"
  grep -q "$pattern" "$out/err" || fail "$output: no '$pattern' in: $(cat "$out/err")"
  grep -q "$dir/$output" "$out/err" || fail "$output: the error does not name the output: $(cat "$out/err")"
  [ -z "$(ls -A "$dir")" ] || fail "$output: left in $dir: $(ls -A "$dir")"
}

limited() { bash -c 'ulimit -f 1024; exec "$@"' limited "$@"; }  # 1 MiB files
mkdir "$out/fsize"
expect_clean_failure "$out/fsize" m.gguf "File too large" limited
expect_clean_failure "$out/fsize" folder "File too large" limited

mkdir "$out/full"
if mount -t tmpfs -o size=1m tmpfs "$out/full" 2> /dev/null; then
  trap 'umount "$out/full" 2> /dev/null || true; rm -rf "$out"' EXIT
  expect_clean_failure "$out/full" m.gguf "No space left on device"
  expect_clean_failure "$out/full" folder "No space left on device"
  mount -o remount,ro "$out/full"
  expect_clean_failure "$out/full" m.gguf "Read-only file system"
  expect_clean_failure "$out/full" folder "Read-only file system"
  umount "$out/full"
else
  echo "note: mount not permitted here: the full-disk and read-only cases ran only as the file-size limit"
fi

# --resume on the CLI: nothing to resume is said, and the --help names it.
"$lowbit" quantize --help | grep -q -- "--resume" || fail "quantize --help has no --resume"
"$lowbit" quantize "$model" "$out/r.gguf" --recipe q8_0 --resume 2> "$out/err" > /dev/null
grep -q "no partial output" "$out/err" || fail "--resume with nothing to resume: $(cat "$out/err")"
"$lowbit" quantize "$model" "$out/r2.gguf" --recipe q8_0 --resume --json 2> /dev/null | grep -q '"tensors_kept": 0' || fail "--json has no resume"

# perplexity --checkpoint on the CLI: a run killed with SIGKILL once its checkpoint exists,
# resumed, gives the uninterrupted numbers and logits bytes; nothing is left behind. The
# paths are relative (the partial file is found by name in the current folder).
ppl=(perplexity "$model" -f "$shared/data/shakespeare-test.txt" -c 64 --chunks 200)
cd "$out"
"$lowbit" "${ppl[@]}" --save-logits whole.logits --json 2> /dev/null | grep -v "second" > whole.json
"$lowbit" "${ppl[@]}" --save-logits p.logits --checkpoint p.ck --checkpoint-every 0 > /dev/null 2>&1 &
pid=$!
for _ in $(seq 200); do [ -s p.ck ] && break; sleep 0.05; done
kill -9 "$pid" 2> /dev/null || true
wait "$pid" 2> /dev/null || true
[ -s p.ck ] || fail "perplexity --checkpoint wrote no checkpoint"
[ ! -e p.logits ] || fail "a killed pass left its logits under the final name"
"$lowbit" "${ppl[@]}" --save-logits p.logits --checkpoint p.ck --resume --json 2> err | grep -v "second" > p.json
grep -q '"resume": "--resume: continued after' p.json || fail "the resumed run did not continue: $(cat p.json err)"
grep -q "started again" p.json && fail "the partial logits file was not found: $(cat p.json)"
diff <(grep -v resume p.json) <(grep -v resume whole.json) || fail "resumed perplexity differs from an uninterrupted run"
cmp p.logits whole.logits || fail "resumed --save-logits differs from an uninterrupted run's"
[ ! -e p.ck ] || fail "a finished run left its checkpoint"
! ls | grep -q "p.logits.tmp" || fail "temporaries left: $(ls)"
cd - > /dev/null
"$lowbit" eval --help | grep -q -- "--resume" || fail "eval --help has no --resume"
echo "cli_output_errors: ok"
