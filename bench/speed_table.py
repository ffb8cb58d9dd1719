#!/usr/bin/env python3
"""The engine speed table of docs/PERF.md: `lowbit bench` on each model file at each
thread count, one markdown row per run. Each run measures the machine's read bandwidth and
int8 peak itself, so every fraction is against a figure taken in the same process.

    bench/speed_table.py build/lowbit 1,2 /tmp/b-q4_0.gguf /tmp/b-q8_0.gguf ...
"""
import json
import os
import subprocess
import sys


def main() -> int:
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    lowbit, threads, models = sys.argv[1], [int(t) for t in sys.argv[2].split(",")], sys.argv[3:]
    print("| model | threads | MB/token | decode tok/s (range) | GB/s | of read bw | prefill tok/s (range) | GOP/s | of int8 peak |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for model in models:
        for t in threads:
            out = subprocess.run([lowbit, "bench", model, "-p", "128", "-n", "32", "--reps", "3", "-t", str(t), "--json"],
                                 check=True, capture_output=True, text=True).stdout
            r = json.loads(out)
            d, p = r["decode_tps"], r["prefill_tps"]
            print(f"| {os.path.basename(model)} | {t} | {r['decode_bytes_per_token'] / 1e6:.0f} | "
                  f"{d['median']:.1f} ({d['min']:.1f}-{d['max']:.1f}) | {r['decode_gbs']:.1f} | "
                  f"{100 * r['decode_bandwidth_fraction']:.0f}% of {r['read_bandwidth_gbs']:.1f} | "
                  f"{p['median']:.1f} ({p['min']:.1f}-{p['max']:.1f}) | {r['prefill_gops']:.0f} | "
                  f"{100 * r['prefill_int8_peak_fraction']:.0f}% of {r['int8_peak_gops']:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
