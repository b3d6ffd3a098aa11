#!/usr/bin/env python3
"""Summarises the JSON lines of benchmarks/compare.sh: per implementation, cell and thread
count the median (and min-max range over repeats) of samples/s, achieved GFLOP/s and its share
of the measured SGEMM peak, then cellflow's ratio to each peer. Standard library only."""
import json
import statistics
import sys
from collections import defaultdict

# Measured SGEMM peak (2048^3, best of Eigen/OpenBLAS/oneDNN) on this machine kind, from
# ../shared/peers/results (oneDNN): 199.5 GFLOP/s with 2 threads, 106.5 with 1.
PEAK = {2: 199.5, 1: 106.5}
PEER_CELL = {"lstm": "lstm", "gru": "gru", "peephole": "peephole"}


def flops(cell, layers=3, hidden=150, steps=28, inputs=28, classes=10):
    g = 3 if cell in ("gru", "gru_v") else 4
    fwd = sum(2 * steps * ((inputs if l == 0 else hidden) + hidden) * g * hidden for l in range(layers))
    head = 2 * hidden * classes
    return 3 * fwd - 2 * steps * inputs * g * hidden + 3 * head, fwd + head


def main(path):
    rows = [json.loads(l) for l in open(path) if l.strip().startswith("{")]
    # A peak measured in the same sitting (compare.sh runs oneDNN's 2048^3 SGEMM) wins over the
    # recorded one: the machine's speed drifts between sittings.
    measured = defaultdict(list)
    for r in rows:
        if r.get("bench") == "gemm" and r.get("shape") == "square":
            measured[int(r["threads"])].append(float(r["gflops_median"]))
    for thr, v in measured.items():
        PEAK[thr] = statistics.median(v)
    rows = [r for r in rows if "impl" in r]
    groups = defaultdict(lambda: defaultdict(list))
    stream = defaultdict(list)
    for r in rows:
        if "stream_us_per_step_median" in r:
            stream[r["impl"]].append(r["stream_us_per_step_median"])
        key = (r["impl"], r["cell"], int(r.get("threads", 0)))
        for m in ("train_samples_per_s", "infer_samples_per_s"):
            if m in r:
                groups[key][m].append(float(r[m]))
    print("SGEMM peak used for % peak: " + ", ".join(
        f"{t} thread(s) {PEAK[t]:.1f} GFLOP/s ({'measured in this run' if t in measured else 'recorded in ../shared/peers'})"
        for t in sorted(PEAK, reverse=True)))
    print()
    print("| impl | cell | threads | n | train samples/s | train GFLOP/s (% peak) | infer samples/s | infer GFLOP/s (% peak) |")
    print("|---|---|---|---|---|---|---|---|")
    med = {}
    for key in sorted(groups, key=lambda k: (-k[2], k[1], k[0])):
        impl, cell, thr = key
        g = groups[key]
        tf, inf = flops(cell)
        cells = []
        for m, f in (("train_samples_per_s", tf), ("infer_samples_per_s", inf)):
            v = g.get(m)
            if not v:
                cells += ["-", "-"]
                continue
            md = statistics.median(v)
            med[(impl, cell, thr, m)] = md
            gf = md * f / 1e9
            peak = PEAK.get(thr)
            cells.append(f"{md:,.0f} ({min(v):,.0f}-{max(v):,.0f})")
            cells.append(f"{gf:.1f} ({100 * gf / peak:.0f}%)" if peak else f"{gf:.1f}")
        n = max(len(x) for x in g.values())
        print(f"| {impl} | {cell} | {thr} | {n} | " + " | ".join(cells) + " |")
    print()
    print("Ratios of medians, cellflow / peer (same sitting):")
    print()
    print("| cell | threads | train / torch | train / oneDNN (RNN only) | infer / torch | infer / oneDNN |")
    print("|---|---|---|---|---|---|")
    for (impl, cell, thr, m) in sorted({k[:3] + ("",) for k in med if k[0] == "cellflow"}, key=lambda k: (-k[2], k[1])):
        out = []
        for m in ("train_samples_per_s", "infer_samples_per_s"):
            for peer in ("torch", "onednn"):
                a = med.get(("cellflow", cell, thr, m))
                b = med.get((peer, PEER_CELL[cell], thr, m))
                out.append(f"{a / b:.2f}x" if a and b else "-")
        print(f"| {cell} | {thr} | {out[0]} | {out[1]} | {out[2]} | {out[3]} |")
    if any(k[0] == "cellflow-baseline" for k in med):
        print()
        print("This build against the baseline build (ratio of medians, same sitting):")
        print()
        print("| cell | threads | train now / baseline | infer now / baseline |")
        print("|---|---|---|---|")
        for (cell, thr) in sorted({k[1:3] for k in med if k[0] == "cellflow-baseline"}, key=lambda k: (-k[1], k[0])):
            out = []
            for m in ("train_samples_per_s", "infer_samples_per_s"):
                a, b = med.get(("cellflow", cell, thr, m)), med.get(("cellflow-baseline", cell, thr, m))
                out.append(f"{a / b:.3f}" if a and b else "-")
            print(f"| {cell} | {thr} | {out[0]} | {out[1]} |")
    if stream:
        print()
        print("Streaming, batch 1, one step through the 3-layer LSTM stack, 1 thread (us/step, median of repeats):")
        print()
        for impl, v in sorted(stream.items()):
            print(f"- {impl}: {statistics.median(v):.1f} us/step (range {min(v):.1f}-{max(v):.1f})")
        if "cellflow" in stream and "torch" in stream:
            print(f"- ratio torch / cellflow: {statistics.median(stream['torch']) / statistics.median(stream['cellflow']):.1f}x")


if __name__ == "__main__":
    main(sys.argv[1])
