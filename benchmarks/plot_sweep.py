#!/usr/bin/env python3
"""Tables for benchmarks/sweep.sh and an SVG plot of training samples/s against batch size,
cellflow vs PyTorch. Standard library only. usage: plot_sweep.py raw.jsonl OUT_DIR"""
import json
import math
import sys


def flops(layers, hidden, steps, inputs, classes=10, g=4):
    fwd = sum(2 * steps * ((inputs if l == 0 else hidden) + hidden) * g * hidden for l in range(layers))
    head = 2 * hidden * classes
    return 3 * fwd - 2 * steps * inputs * g * hidden + 3 * head


def main(raw, out):
    rows = [json.loads(l) for l in open(raw) if l.strip().startswith("{")]
    base = dict(layers=3, hidden=150, steps=28, inputs=28, batch=150)

    def varying(r, key):
        return all(r.get(k) == v for k, v in base.items() if k != key)

    print("Training step, LSTM, samples/s (GFLOP/s):\n")
    print("| batch | cellflow | PyTorch | ratio |\n|---|---|---|---|")
    by_batch = {}
    for r in rows:
        if varying(r, "batch") and "train_samples_per_s" in r:
            by_batch.setdefault(r["batch"], {})[r["impl"]] = r
    for b in sorted(by_batch):
        c, t = by_batch[b].get("cellflow"), by_batch[b].get("torch")
        f = flops(3, 150, 28, 28)
        cell = lambda r: f"{r['train_samples_per_s']:,.0f} ({r['train_samples_per_s'] * f / 1e9:.1f})" if r else "-"
        ratio = f"{c['train_samples_per_s'] / t['train_samples_per_s']:.2f}x" if c and t else "-"
        print(f"| {b} | {cell(c)} | {cell(t)} | {ratio} |")
    for key, label in (("hidden", "units"), ("steps", "sequence length")):
        print(f"\ncellflow training step by {label} (batch 150): samples/s, GFLOP/s, ms per step\n")
        print(f"| {label} | samples/s | GFLOP/s | ms/step | ms/step per time step |\n|---|---|---|---|---|")
        for r in sorted((r for r in rows if r["impl"] == "cellflow" and varying(r, key) and "train_samples_per_s" in r
                         and "infer_samples_per_s" not in r),  # the runs of this sweep (train only)
                        key=lambda r: r[key]):
            f = flops(3, r["hidden"], r["steps"], 28)
            sps = r["train_samples_per_s"]
            print(f"| {r[key]} | {sps:,.0f} | {sps * f / 1e9:.1f} | {r['train_ms_median']:.1f} | "
                  f"{r['train_ms_median'] / r['steps']:.2f} |")
    # SVG: log2 batch on x, samples/s on a log y axis.
    pts = {impl: [(b, by_batch[b][impl]["train_samples_per_s"]) for b in sorted(by_batch) if impl in by_batch[b]]
           for impl in ("cellflow", "torch")}
    allv = [v for p in pts.values() for _, v in p]
    if not allv:
        return
    W, H, L, R, T, B = 560, 340, 70, 130, 40, 50
    xs = sorted(by_batch)
    x0, x1 = math.log2(xs[0]), math.log2(xs[-1])
    y0, y1 = math.floor(math.log10(min(allv))), math.ceil(math.log10(max(allv)))
    X = lambda b: L + (W - L - R) * (math.log2(b) - x0) / max(1e-9, x1 - x0)
    Y = lambda v: T + (H - T - B) * (1 - (math.log10(v) - y0) / max(1e-9, y1 - y0))
    s = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{W}' height='{H}' font-family='sans-serif'>",
         "<rect width='100%' height='100%' fill='white'/>",
         f"<text x='{W / 2}' y='22' text-anchor='middle' font-size='14' font-weight='bold'>"
         "Training samples/s vs batch size (3 x LSTM(150), 28 steps)</text>"]
    for e in range(y0, y1 + 1):
        s.append(f"<line x1='{L}' x2='{W - R}' y1='{Y(10 ** e)}' y2='{Y(10 ** e)}' stroke='#ddd'/>")
        s.append(f"<text x='{L - 6}' y='{Y(10 ** e) + 4}' text-anchor='end' font-size='11'>{10 ** e:,}</text>")
    for b in xs:
        s.append(f"<text x='{X(b)}' y='{H - B + 16}' text-anchor='middle' font-size='11'>{b}</text>")
    s.append(f"<text x='{(L + W - R) / 2}' y='{H - 12}' text-anchor='middle' font-size='12'>batch size</text>")
    s.append(f"<rect x='{L}' y='{T}' width='{W - L - R}' height='{H - T - B}' fill='none' stroke='#888'/>")
    colors = {"cellflow": "#1f77b4", "torch": "#d62728"}
    names = {"cellflow": "cellflow", "torch": "PyTorch nn.LSTM"}
    for k, (impl, p) in enumerate(pts.items()):
        s.append(f"<polyline fill='none' stroke='{colors[impl]}' stroke-width='2' points='" +
                 " ".join(f"{X(b):.1f},{Y(v):.1f}" for b, v in p) + "'/>")
        for b, v in p:
            s.append(f"<circle cx='{X(b):.1f}' cy='{Y(v):.1f}' r='3' fill='{colors[impl]}'><title>{names[impl]}, "
                     f"batch {b}: {v:,.0f} samples/s</title></circle>")
        s.append(f"<rect x='{W - R + 12}' y='{T + 10 + 20 * k}' width='12' height='3' fill='{colors[impl]}'/>")
        s.append(f"<text x='{W - R + 30}' y='{T + 15 + 20 * k}' font-size='11'>{names[impl]}</text>")
    s.append("</svg>")
    with open(f"{out}/train_vs_batch.svg", "w") as fh:
        fh.write("\n".join(s) + "\n")
    print(f"\nplot: {out}/train_vs_batch.svg")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
