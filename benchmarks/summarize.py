#!/usr/bin/env python3
"""Summarises the JSON lines of benchmarks/compare.sh: per implementation (and data type), cell and
thread count the median (and min-max range over repeats) of samples/s, achieved GFLOP/s and its
share of the SGEMM peak measured in the same sitting (benchmarks/peers/gemm_peak), then
cellflow's ratio to each peer, bf16 rows when present, and streaming latency (against the
memory floor when cellflow_bench reports one). Standard library only.

  python3 benchmarks/summarize.py benchmarks/results/<date>/raw.jsonl

The FLOP counts are benchmarks/peers/FLOPS.md's (flops.py): the full model for cellflow and
PyTorch, the RNN alone for oneDNN (whose program times the RNN primitives only)."""
import json
import os
import statistics
import sys
from collections import defaultdict

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "peers"))
from flops import flops  # noqa: E402

METRICS = ("train_samples_per_s", "infer_samples_per_s")
SEED = dict(layers=3, hidden=150, steps=28, inputs=28, classes=10)


def impl_key(r):
    """cellflow, torch, onednn, ... with "-bf16" appended for reduced-precision rows."""
    return r["impl"] + ("-bf16" if r.get("dtype") == "bf16" else "")


def row_flops(r):
    cfg = {k: int(r.get(k, v)) for k, v in SEED.items()}
    return flops(r["cell"], head=not r["impl"].startswith("onednn"), **cfg)


def fmt_range(v, digits=0):
    f = f"{{:,.{digits}f}}"
    return f"{f.format(statistics.median(v))} ({f.format(min(v))}-{f.format(max(v))})"


def machine_lines(raw_path):
    """The CPU model and ISA lines of machine.txt next to the raw file (compare.sh writes it)."""
    path = os.path.join(os.path.dirname(os.path.abspath(raw_path)), "machine.txt")
    if not os.path.exists(path):
        return []
    keep = ("date", "commit", "cpu", "model name", "isa", "threads", "nproc")
    return [l.rstrip() for l in open(path) if l.lower().startswith(keep)]


def main(path):
    rows = [json.loads(l) for l in open(path) if l.strip().startswith("{")]
    for line in machine_lines(path):
        print(f"    {line}")
    if machine_lines(path):
        print()

    # The SGEMM peak of this sitting: per thread count, the best backend's median 2048^3 rate.
    raw_gemm = [r for r in rows if r.get("bench") == "gemm"]
    gemm = defaultdict(list)
    for r in rows:
        if r.get("bench") == "gemm" and r.get("shape") == "square":
            gemm[(int(r["threads"]), r.get("backend", "?"))].append(float(r["gflops_median"]))
    peak, peak_src = {}, {}
    for (thr, backend), v in gemm.items():
        if statistics.median(v) > peak.get(thr, 0):
            peak[thr], peak_src[thr] = statistics.median(v), backend
    if peak:
        print("SGEMM peak used for % peak (2048^3, measured in this run): " + ", ".join(
            f"{t} thread(s) {peak[t]:.1f} GFLOP/s ({peak_src[t]})" for t in sorted(peak, reverse=True)))
    else:
        print("No SGEMM peak measured in this run (benchmarks/peers/gemm_peak): no % of peak.")
    print()

    errors = [r for r in rows if "error" in r]
    rows = [r for r in rows if "impl" in r and "error" not in r]
    groups = defaultdict(lambda: defaultdict(list))
    stream = defaultdict(list)
    floor = defaultdict(list)
    for r in rows:
        if "stream_us_per_step_median" in r:
            stream[(impl_key(r), r.get("cell", "lstm"))].append(float(r["stream_us_per_step_median"]))
            for k, v in r.items():  # a memory floor measured by the same program, if it reports one
                if "floor" in k and "_us" in k and isinstance(v, (int, float)):
                    floor[k].append(float(v))
        key = (impl_key(r), r["cell"], int(r.get("threads", 0)))
        for m in METRICS:
            if m in r:
                groups[key][m].append(float(r[m]))
                groups[key]["_flops"] = [row_flops(r)]
    groups = {k: g for k, g in groups.items() if any(m in g for m in METRICS)}

    print("| impl | cell | threads | n | train samples/s | train GFLOP/s (% peak) | infer samples/s | infer GFLOP/s (% peak) |")
    print("|---|---|---|---|---|---|---|---|")
    med = {}
    for key in sorted(groups, key=lambda k: (-k[2], k[1], k[0])):
        impl, cell, thr = key
        g = groups[key]
        train_f, infer_f = g["_flops"][0]
        cells = []
        for m, f in (("train_samples_per_s", train_f), ("infer_samples_per_s", infer_f)):
            v = g.get(m)
            if not v:
                cells += ["-", "-"]
                continue
            md = statistics.median(v)
            med[(impl, cell, thr, m)] = md
            gf = md * f / 1e9
            cells.append(fmt_range(v))
            cells.append(f"{gf:.1f} ({100 * gf / peak[thr]:.0f}%)" if thr in peak else f"{gf:.1f}")
        n = max(len(v) for m, v in g.items() if m in METRICS)
        print(f"| {impl} | {cell} | {thr} | {n} | " + " | ".join(cells) + " |")

    def ratio(a, b, m, cell, thr, digits=2):
        x, y = med.get((a, cell, thr, m)), med.get((b, cell, thr, m))
        return f"{x / y:.{digits}f}x" if x and y else "-"

    pairs = sorted({k[1:3] for k in med if k[0] == "cellflow"}, key=lambda k: (-k[1], k[0]))
    if pairs:
        print()
        print("Ratios of medians, cellflow / peer (same sitting; oneDNN times the RNN alone):")
        print()
        print("| cell | threads | train / PyTorch | train / oneDNN (RNN only) | infer / PyTorch | infer / oneDNN |")
        print("|---|---|---|---|---|---|")
        for cell, thr in pairs:
            out = [ratio("cellflow", peer, m, cell, thr) for m in METRICS for peer in ("torch", "onednn")]
            print(f"| {cell} | {thr} | " + " | ".join(out) + " |")

    bf16 = sorted({k[1:3] for k in med if k[0].endswith("-bf16")}, key=lambda k: (-k[1], k[0]))
    if bf16:
        print()
        print("bf16 inference (weights and layer data in bfloat16, f32 accumulation), ratios of medians:")
        print()
        print("| cell | threads | cellflow bf16 / cellflow f32 | oneDNN bf16 / oneDNN f32 | cellflow bf16 / oneDNN bf16 | cellflow f32 / oneDNN bf16 |")
        print("|---|---|---|---|---|---|")
        m = "infer_samples_per_s"
        for cell, thr in bf16:
            print(f"| {cell} | {thr} | {ratio('cellflow-bf16', 'cellflow', m, cell, thr)} | "
                  f"{ratio('onednn-bf16', 'onednn', m, cell, thr)} | {ratio('cellflow-bf16', 'onednn-bf16', m, cell, thr)} | "
                  f"{ratio('cellflow', 'onednn-bf16', m, cell, thr)} |")
        impls = sorted({(r["cell"], r.get("impl_fwd_infer", "?"), r.get("isa", "?")) for r in rows
                        if r.get("dtype") == "bf16" and r["impl"] == "onednn" and "infer_samples_per_s" in r})
        if impls:
            print()
            print("oneDNN's bf16 inference primitives (cell: implementation on ISA): "
                  + ", ".join(f"{c}: {i} on {isa}" for c, i, isa in impls))

    if any(k[0] == "cellflow-baseline" for k in med):
        print()
        print("This build against the baseline build (ratio of medians, same sitting):")
        print()
        print("| cell | threads | train now / baseline | infer now / baseline |")
        print("|---|---|---|---|")
        for cell, thr in sorted({k[1:3] for k in med if k[0] == "cellflow-baseline"}, key=lambda k: (-k[1], k[0])):
            out = [ratio("cellflow", "cellflow-baseline", m, cell, thr, 3).rstrip("x") for m in METRICS]
            print(f"| {cell} | {thr} | {out[0]} | {out[1]} |")

    if stream:
        print()
        print("Streaming, batch 1, one step through the 3-layer stack, 1 thread (us/step, median of repeats, range):")
        print()
        for (impl, cell), v in sorted(stream.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            print(f"- {impl} {cell}: {fmt_range(v, 1)} us/step")
        cf = stream.get(("cellflow", "lstm"))
        for peer in ("torch", "onednn", "onednn-bf16", "cellflow-bf16"):
            p = stream.get((peer, "lstm"))
            if cf and p:
                print(f"- ratio {peer} / cellflow (LSTM): {statistics.median(p) / statistics.median(cf):.2f}x")
        for k, v in sorted(floor.items()):
            line = f"- memory floor ({k}): {fmt_range(v, 1)} us"
            if cf:
                line += f"; cellflow LSTM / floor = {statistics.median(cf) / statistics.median(v):.2f}x"
            print(line)

    shapes = defaultdict(list)
    for r in raw_gemm:
        if r.get("shape") != "square":
            shapes[(r["shape"], r.get("backend", "?"), int(r["threads"]))].append(float(r["gflops_median"]))
    if shapes:
        cols = sorted({k[1:] for k in shapes}, key=lambda c: (c[0], -c[1]))
        print()
        print("SGEMM at the seed model's shapes (benchmarks/peers/gemm_peak --set rnn), GFLOP/s, median:")
        print()
        print("| shape | M x N x K | " + " | ".join(f"{b} {t}T" for b, t in cols) + " |")
        print("|---|---|" + "---|" * len(cols))
        dims = {r["shape"]: f"{r['M']} x {r['N']} x {r['K']}" for r in raw_gemm}
        for shape in sorted({k[0] for k in shapes}, key=lambda s: (s.split(".")[0] != "lstm", s)):
            vals = [shapes.get((shape,) + c) for c in cols]
            print(f"| {shape} | {dims[shape]} | " + " | ".join(f"{statistics.median(v):.0f}" if v else "-" for v in vals) + " |")

    if errors:
        print()
        print("Runs that did not produce a figure:")
        print()
        for r in errors:
            print(f"- {r.get('impl')} {r.get('cell')} {r.get('mode', '')} {r.get('dtype', '')} "
                  f"{r.get('threads', '')} thread(s): {r['error']}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: summarize.py RAW.jsonl")
    main(sys.argv[1])
