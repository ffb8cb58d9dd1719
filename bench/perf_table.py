#!/usr/bin/env python3
"""Turns bench_formats' JSON output into the markdown table of docs/PERF.md.

Usage: bench/perf_table.py build/bench_formats.json
Columns: GB/s of f32 through quantize and dequantize (single thread) and each as a
fraction of the single-core memcpy bandwidth measured by the same run.
"""
import json
import sys


def main(path):
    with open(path) as f:
        data = json.load(f)
    rows = {}
    for b in data["benchmarks"]:
        op, name = b["name"].split("/", 1)
        rows.setdefault(name, {})[op] = (b["bytes_per_second"] / 1e9, b["of_membw"])
    print("| format | quantize GB/s | of membw | dequantize GB/s | of membw |")
    print("|---|---:|---:|---:|---:|")
    for name, ops in rows.items():
        q = ops.get("quantize", (0, 0))
        d = ops.get("dequantize", (0, 0))
        print(f"| {name} | {q[0]:.3f} | {q[1]:.3f} | {d[0]:.2f} | {d[1]:.2f} |")


if __name__ == "__main__":
    main(sys.argv[1])
