#!/usr/bin/env bash
# `eval --plot` and `--html` in a real browser: Debian's chromium renders the page headless
# (a screenshot of it, and its DOM after parsing), every number cell of the rendered table
# carries the value `--json` printed in the same run, its shown text is that value rounded,
# and the plots are an SVG document and a PNG image. A W8A8 folder (quantize --method w8a8)
# and a q4_0 GGUF are the compared models.
set -euo pipefail
source "$(dirname "$0")/cli_setup.sh"
browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || fail "no chromium (scripts/install-deps.sh installs it)"

model="$shared/models/shakespeare-llama-4m"
"$lowbit" quantize "$model" -o "$out/w8a8" --method w8a8 2>/dev/null
"$lowbit" quantize "$model" -o "$out/q4.gguf" --format q4_0 2>/dev/null
"$lowbit" eval "$model" "$out/q4.gguf" "$out/w8a8" -f "$shared/data/shakespeare-test.txt" -c 128 --chunks 4 --gen-tokens 4 \
  --by-position 4 --json --plot "$out/plot.svg" --html "$out/report.html" > "$out/eval.json" 2>/dev/null
"$lowbit" eval "$model" "$out/q4.gguf" -f "$shared/data/shakespeare-test.txt" -c 128 --chunks 2 --gen-tokens 4 \
  --plot "$out/plot.png" > /dev/null 2>&1
head -c 8 "$out/plot.png" | od -An -tx1 | grep -q "89 50 4e 47 0d 0a 1a 0a" || fail "plot.png is not a PNG"
grep -q "<svg" "$out/plot.svg" && grep -q "q4.gguf" "$out/plot.svg" && grep -q "w8a8 act int8" "$out/plot.svg" || fail "plot.svg lacks its points: $(head -c 400 "$out/plot.svg")"
if "$lowbit" eval "$model" "$out/q4.gguf" -f "$shared/data/shakespeare-test.txt" -c 128 --chunks 2 --plot "$out/plot.gif" > /dev/null 2>"$out/err.txt"; then
  fail "--plot plot.gif accepted"
fi
grep -q "svg or .png" "$out/err.txt" || fail "--plot .gif error: $(cat "$out/err.txt")"

flags=(--headless --no-sandbox --disable-gpu --no-first-run --user-data-dir="$out/profile")
timeout 120 "$browser" "${flags[@]}" --dump-dom "file://$out/report.html" > "$out/dom.html" 2>"$out/chromium.log" || fail "chromium --dump-dom: $(tail -5 "$out/chromium.log")"
timeout 120 "$browser" "${flags[@]}" --window-size=1200,1600 --screenshot="$out/shot.png" "file://$out/report.html" >/dev/null 2>>"$out/chromium.log" || fail "chromium --screenshot: $(tail -5 "$out/chromium.log")"
[ "$(stat -c %s "$out/shot.png")" -gt 20000 ] || fail "the screenshot is nearly empty"

python3 - "$out/eval.json" "$out/dom.html" <<'PY' || fail "the page's numbers differ from --json"
import html, json, re, sys
rows = json.load(open(sys.argv[1]))
dom = open(sys.argv[2]).read()
trs = re.findall(r'<tr data-row="(\d+)"[^>]*>(.*?)</tr>', dom, re.S)
assert len(trs) == len(rows), f"{len(trs)} table rows, {len(rows)} in --json"
assert dom.count("<svg") == 2, "two plots in the rendered page"
checked = 0
for index, body in trs:
    row = rows[int(index)]
    for key, value, shown in re.findall(r'<td data-key="([a-z0-9_]+)" data-value="([^"]*)">([^<]*)</td>', body):
        want = row["task"]["accuracy"] if key == "task_accuracy" else row[key]
        got = json.loads(html.unescape(value))
        assert got == want, f"row {index} {key}: page {got}, json {want}"
        shown = html.unescape(shown)
        if isinstance(want, (int, float)) and not isinstance(want, bool) and shown != "-":
            scale = {"file_bytes": 1e-6, "peak_rss_bytes": 1e-6, "top1_agreement": 100, "task_accuracy": 100}.get(key, 1)
            digits = len(shown.split(".")[1]) if "." in shown else 0
            assert abs(float(shown) - want * scale) <= 0.51 * 10 ** -digits, f"row {index} {key}: shows {shown} for {want}"
        checked += 1
assert checked >= 14 * len(rows), f"only {checked} cells checked"
embedded = re.search(r'<script type="application/json" id="lowbit-eval">(.*?)</script>', dom, re.S).group(1)
assert json.loads(embedded.replace("<\\/", "</")) == rows, "the embedded JSON differs"
print(f"{checked} cells equal --json")
PY
