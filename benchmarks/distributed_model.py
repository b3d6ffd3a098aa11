#!/usr/bin/env python3
"""The cost model of docs/distributed.md: the step time of data-parallel training on N ranks,
from figures measured by benchmarks/distributed.sh. Python 3 standard library only.

    benchmarks/distributed_model.py [RESULTS]          default: the newest with compute runs
                                                       benchmarks/results/distributed-*.txt
        --net NAME:GBITS:ALPHA_US ...   networks (default 10G:10:20 100G:100:5)
        --efficiency F                  share of the line rate an allreduce reaches (default 0.9)
        --ranks 1,2,4,...               (default 1,2,4,8,16,32,64)
        --global-batch B                strong scaling's fixed global batch (default 150)
        --per-rank-batch b              weak scaling's fixed per-rank batch (default 150)

One rank per machine, one thread per rank. A step on N ranks at global batch B is

    t_step(N) = t_compute(ceil(B / N)) + t_exposed(N)

t_compute(b): one rank's whole training step (forward, backward, Adam) at batch b, measured with
1 thread (the results' "compute" rows: it is not linear in b, small batches make thin GEMMs).
The slowest rank holds ceil(B / N) examples.
t_exposed(N): the allreduce time the backward pass does not hide. Each bucket of `bytes` takes,
by the ring allreduce,
    t_ring = 2 (N - 1) alpha + 2 (N - 1) / N * bytes / bandwidth
  * no overlap: every bucket after the backward pass, one after the other: the sum of t_ring;
  * overlap (a bucket per layer): bucket k can start once its layer's gradients are final (the
    measured backward timeline at batch b: the results' "ready" times) and once the link is free
    (buckets travel one after another); what ends after the backward pass is exposed. This is
    the ideal: it assumes the MPI library moves a bucket along while the rank computes.
Ignored: the reduction's arithmetic (a few ms for the 10x model at 100 Gbit/s), stragglers and
contention; the ring's latency term is pessimistic for small buckets (MPI libraries use
recursive doubling or trees, log2 N hops, for small messages).

The 2-rank check compares the model, with the loopback alpha and bandwidth measured by the
micro-benchmark, with the measured 2-rank step on this machine.
"""

import argparse
import glob
import json
import math
import os
import statistics
import sys

med = statistics.median


def load(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line.startswith("{") and line.endswith("}"):
                rows.append(json.loads(line))
    return rows


class Compute:
    """One rank's measured step by batch size (medians over the repeats)."""

    def __init__(self, rows, label):
        runs = [r for r in rows if r["mode"] == "compute" and r["label"] == label]
        if not runs:
            raise SystemExit(f"distributed_model.py: no '{label}' rows in the results")
        self.params = runs[0]["params"]
        self.group_bytes = runs[0]["group_bytes"]  # head, then the layers from the top down
        self.by_batch = {}
        for b in sorted({r["batch"] for r in runs}):
            rb = [r for r in runs if r["batch"] == b]
            self.by_batch[b] = {
                "step": med(r["step_ms_median"] for r in rb) / 1e3,
                "backward": med(r["backward_ms"] for r in rb) / 1e3,
                "ready": [med(r["group_ready_ms"][g] for r in rb) / 1e3 for g in range(len(self.group_bytes))],
            }

    def at(self, b):
        if b in self.by_batch:
            return self.by_batch[b]
        # Between two measured batches: linear in the batch (the measured list covers
        # ceil(150 / N) for N = 1, 2, 4, ..., 64, so the default tables never get here).
        sizes = sorted(self.by_batch)
        if b < sizes[0] or b > sizes[-1]:
            raise SystemExit(f"distributed_model.py: batch {b} is outside the measured {sizes[0]}..{sizes[-1]}")
        hi = next(s for s in sizes if s > b)
        lo = max(s for s in sizes if s < b)
        w = (b - lo) / (hi - lo)
        a, c = self.by_batch[lo], self.by_batch[hi]
        return {
            "step": a["step"] + w * (c["step"] - a["step"]),
            "backward": a["backward"] + w * (c["backward"] - a["backward"]),
            "ready": [x + w * (y - x) for x, y in zip(a["ready"], c["ready"])],
        }


def plan(group_bytes, cap):
    """The buckets of GradientAllreduce (collectives.hpp, plan()): groups in backward order, a
    bucket closed once the next group would take it past `cap` bytes; cap 0: one per group.
    Returns (bytes, index of the bucket's last group)."""
    buckets = []
    filled = 0
    for g, n in enumerate(group_bytes):
        if not buckets or filled + n > cap:
            buckets.append([0, g])
            filled = 0
        buckets[-1][0] += n
        buckets[-1][1] = g
        filled += n
    return [tuple(b) for b in buckets]


def ring(nbytes, n, alpha, bandwidth):
    if n == 1:
        return 0.0
    return 2 * (n - 1) * alpha + 2 * (n - 1) / n * nbytes / bandwidth


def exposed(compute_at_b, buckets, n, alpha, bandwidth, overlap):
    if n == 1:
        return 0.0
    if not overlap:
        return sum(ring(b, n, alpha, bandwidth) for b, _ in buckets)
    link_free = 0.0
    for b, last_group in buckets:
        start = max(compute_at_b["ready"][last_group], link_free)
        link_free = start + ring(b, n, alpha, bandwidth)
    return max(0.0, link_free - compute_at_b["backward"])


DEFAULT_BUCKET = 4 << 20


def scaling_table(name, comp, net, args):
    label, gbits, alpha_us = net
    alpha = alpha_us * 1e-6
    bandwidth = gbits / 8 * 1e9 * args.efficiency
    one_bucket = plan(comp.group_bytes, DEFAULT_BUCKET)
    per_layer = plan(comp.group_bytes, 0)
    grad_mb = sum(comp.group_bytes) / 1e6
    print(f"### {name}: {comp.params:,} parameters ({grad_mb:.2f} MB), {label}: "
          f"{gbits} Gbit/s x {args.efficiency:g} = {bandwidth / 1e9:.3g} GB/s, alpha {alpha_us:g} us")
    print()
    print(f"Strong scaling: global batch {args.global_batch}; weak scaling: {args.per_rank_batch} per rank "
          f"(global {args.per_rank_batch} N). Buckets: default (4 MB) "
          f"{', '.join(f'{b / 1e6:.2f}' for b, _ in one_bucket)} MB without overlap; "
          f"a bucket per layer {', '.join(f'{b / 1e6:.2f}' for b, _ in per_layer)} MB with overlap.")
    print()
    print("| N | per-rank batch | t_compute ms | allreduce ms (no overlap) | exposed ms (overlap) | "
          "step ms (no overlap / overlap) | speed-up | efficiency (no overlap / overlap) | "
          "weak: efficiency (no overlap / overlap) |")
    print("|---|---|---|---|---|---|---|---|---|")
    t1 = comp.at(args.global_batch)["step"]
    tw = comp.at(args.per_rank_batch)
    summary = []
    for n in args.ranks:
        b = math.ceil(args.global_batch / n)
        c = comp.at(b)
        no = exposed(c, one_bucket, n, alpha, bandwidth, False)
        ov = exposed(c, per_layer, n, alpha, bandwidth, True)
        s_no, s_ov = c["step"] + no, c["step"] + ov
        sp_no, sp_ov = t1 / s_no, t1 / s_ov
        weak_no = tw["step"] / (tw["step"] + exposed(tw, one_bucket, n, alpha, bandwidth, False))
        weak_ov = tw["step"] / (tw["step"] + exposed(tw, per_layer, n, alpha, bandwidth, True))
        summary.append((n, sp_no / n, sp_ov / n, weak_no, weak_ov))
        print(f"| {n} | {b} | {c['step'] * 1e3:.1f} | {no * 1e3:.2f} | {ov * 1e3:.2f} | "
              f"{s_no * 1e3:.1f} / {s_ov * 1e3:.1f} | {sp_no:.1f}x / {sp_ov:.1f}x | "
              f"{sp_no / n:.0%} / {sp_ov / n:.0%} | {weak_no:.0%} / {weak_ov:.0%} |")
    print()
    best = max(summary, key=lambda s: s[0] * s[2])
    print(f"Largest strong-scaling speed-up in this table: {best[0] * best[2]:.1f}x at N = {best[0]} (overlap).")
    print()


def summary_table(name, comp, nets, args):
    """One table per model: strong-scaling speed-up (efficiency) on every network, and weak
    scaling's efficiency; "free network" is the compute alone (the per-rank batch's cost)."""
    one_bucket = plan(comp.group_bytes, DEFAULT_BUCKET)
    per_layer = plan(comp.group_bytes, 0)
    print(f"### {name} ({comp.params:,} parameters, {sum(comp.group_bytes) / 1e6:.2f} MB of gradients): summary")
    print()
    print(f"Strong scaling at global batch {args.global_batch}: speed-up over one rank (efficiency = speed-up / N), "
          f"without overlap / with ideal overlap. Weak scaling at {args.per_rank_batch} per rank: efficiency.")
    print()
    head = "| N | per-rank batch | t_compute ms | free network |"
    rule = "|---|---|---|---|"
    for label, _, _ in nets:
        head += f" {label} |"
        rule += "---|"
    for label, _, _ in nets:
        head += f" weak, {label} |"
        rule += "---|"
    print(head)
    print(rule)
    t1 = comp.at(args.global_batch)["step"]
    tw = comp.at(args.per_rank_batch)
    for n in args.ranks:
        b = math.ceil(args.global_batch / n)
        c = comp.at(b)
        free = t1 / c["step"]
        row = f"| {n} | {b} | {c['step'] * 1e3:.1f} | {free:.1f}x ({free / n:.0%}) |"
        weak = ""
        for _, gbits, alpha_us in nets:
            alpha, bw = alpha_us * 1e-6, gbits / 8 * 1e9 * args.efficiency
            s_no = c["step"] + exposed(c, one_bucket, n, alpha, bw, False)
            s_ov = c["step"] + exposed(c, per_layer, n, alpha, bw, True)
            row += f" {t1 / s_no:.1f}x / {t1 / s_ov:.1f}x ({t1 / s_no / n:.0%} / {t1 / s_ov / n:.0%}) |"
            w_no = tw["step"] / (tw["step"] + exposed(tw, one_bucket, n, alpha, bw, False))
            w_ov = tw["step"] / (tw["step"] + exposed(tw, per_layer, n, alpha, bw, True))
            weak += f" {w_no:.0%} / {w_ov:.0%} |"
        print(row + weak)
    print()


def check_two_ranks(rows, comp, name, labels, loop_alpha, loop_bw):
    """The model against the measured 2-rank loopback steps: labels = (overlap per layer, no
    overlap, control without allreduce), e.g. ("c", "e", "f")."""
    train = [r for r in rows if r["mode"] == "train"]
    runs = {x: [r for r in train if r["label"] == x] for x in labels}
    if not all(runs.values()):
        return
    b = runs[labels[0]][0]["local_batch"]
    c = comp.at(b)
    control = med(r["step_ms_median"] for r in runs[labels[2]])
    for label, buckets, overlap, what in ((labels[1], plan(comp.group_bytes, DEFAULT_BUCKET), False, "no overlap"),
                                          (labels[0], plan(comp.group_bytes, 0), True, "overlap, a bucket per layer")):
        predicted = exposed(c, buckets, 2, loop_alpha, loop_bw, overlap)
        step = med(r["step_ms_median"] for r in runs[label])
        wait = med(r["wait_ms_mean"] for r in runs[label])
        skew = med(r["skew_ms_median"] for r in runs[label])
        step_pred = c["step"] + predicted
        print(f"| {name}, ({label}) {what} | {b} | {c['step'] * 1e3:.1f} | {control:.1f} | {predicted * 1e3:.2f} | "
              f"{wait:.2f} | {skew:.2f} | {step_pred * 1e3:.1f} | {step:.1f} | {step_pred * 1e3 / step - 1:+.1%} |")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", nargs="?")
    p.add_argument("--net", nargs="+", default=["10G:10:20", "100G:100:5"])
    p.add_argument("--efficiency", type=float, default=0.9)
    p.add_argument("--ranks", default="1,2,4,8,16,32,64")
    p.add_argument("--global-batch", type=int, default=150)
    p.add_argument("--per-rank-batch", type=int, default=150)
    args = p.parse_args()
    if args.results is None:
        here = os.path.dirname(os.path.abspath(__file__))
        found = sorted(glob.glob(os.path.join(here, "results", "distributed-*.txt")))
        # The newest full run: one with the per-batch compute measurements (distributed.sh
        # --no-compute leaves them out).
        found = [f for f in found if any(r["mode"] == "compute" for r in load(f))]
        if not found:
            raise SystemExit("distributed_model.py: no benchmarks/results/distributed-*.txt with compute runs; "
                             "run distributed.sh")
        args.results = found[-1]
    args.ranks = [int(x) for x in args.ranks.split(",")]
    nets = []
    for spec in args.net:
        name, gbits, alpha = spec.split(":")
        nets.append((name, float(gbits), float(alpha)))
    rows = load(args.results)
    print(f"Inputs: {os.path.relpath(args.results)}")
    print()

    models = [("Seed model", "seed", Compute(rows, "compute"))]
    if any(r["mode"] == "compute" and r["label"] == "compute-big" for r in rows):
        models.append(("10x model", "10x", Compute(rows, "compute-big")))

    fits = [r for r in rows if r["mode"] == "allreduce_fit"]
    if fits:
        loop_alpha = med(r["alpha_us"] for r in fits) * 1e-6
        loop_bw = med(r["bandwidth_gbytes_per_s"] for r in fits) * 1e9
        print(f"### Check: the model against the measured 2-rank step on this machine (loopback: alpha "
              f"{loop_alpha * 1e6:.2f} us, {loop_bw / 1e9:.2f} GB/s)")
        print()
        print("t_compute: one rank alone at its batch, 1 thread (the model's input); control: the two ranks "
              "stepping at once without an allreduce; exposed: predicted by the model, and measured "
              "(last_wait_seconds); skew: measured gap between the ranks' ends of backward; medians over the repeats.")
        print()
        print("| run | per-rank batch | t_compute ms | control ms | exposed ms, predicted | exposed ms, measured | "
              "skew ms | step ms, predicted | step ms, measured | predicted / measured - 1 |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for name, key, comp in models:
            check_two_ranks(rows, comp, name, ("c", "e", "f") if key == "seed" else ("C", "E", "F"), loop_alpha,
                            loop_bw)
        print()

    nets_text = ", ".join(f"{n} = {g:g} Gbit/s x {args.efficiency:g}, alpha {a:g} us" for n, g, a in nets)
    print(f"Networks: {nets_text}. t_ring = 2 (N - 1) alpha + 2 (N - 1) / N bytes / bandwidth per bucket.")
    print()
    for name, _, comp in models:
        summary_table(name, comp, nets, args)
    for name, _, comp in models:
        for net in nets:
            scaling_table(name, comp, net, args)


if __name__ == "__main__":
    sys.exit(main())
