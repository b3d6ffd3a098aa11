#!/usr/bin/env python3
"""PyTorch peer of `cellflow_bench --lengths uniform|longtail|full`: the seed model (L stacked
nn.LSTM / nn.GRU layers of H units over T steps of I inputs, a dense head on the top layer's
state after each example's last step, cross-entropy, Adam 1e-3) on a batch of variable-length
sequences, with the very length draw cellflow_bench makes (SplitMix64 seeded with 20261207; see
the top of benchmarks/cellflow_bench.cpp).

  --packed 1  pack_padded_sequence(enforce_sorted=False): each step runs only the examples that
              have not ended (PyTorch's way of skipping finished rows)
  --packed 0  the padded batch, every row of every step (the head reads the output at L_b - 1)

  train  one full training step: zero_grad, forward to logits, cross_entropy, backward, Adam
  infer  forward to logits under torch.inference_mode()

Run with Debian's /usr/bin/python3 (python3-torch). Before importing torch the script runs itself
again, once, with the OpenMP build of OpenBLAS first on LD_LIBRARY_PATH (the pthread build starts
threads of its own beside torch's OpenMP ones), OMP_NUM_THREADS / OPENBLAS_NUM_THREADS set to
--threads, and glibc malloc tunables that keep freed activations mapped between steps (as the
other PyTorch peers do). Prints one JSON line with cellflow_bench's field names.

  /usr/bin/python3 benchmarks/peers/torch_varlen.py --cell lstm --lengths uniform --packed 1
"""
import argparse
import json
import math
import os
import statistics
import time

from torch_rnn import OPENBLAS_OPENMP, loaded_blas, setup_env

p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--cell", choices=["lstm", "gru"], default="lstm")
p.add_argument("--mode", default="train,infer", help="comma list of train, infer")
p.add_argument("--layers", type=int, default=3)
p.add_argument("--hidden", type=int, default=150)
p.add_argument("--steps", type=int, default=28)
p.add_argument("--inputs", type=int, default=28)
p.add_argument("--batch", type=int, default=150)
p.add_argument("--classes", type=int, default=10)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--iters", type=int, default=30)
p.add_argument("--warmup", type=int, default=5)
p.add_argument("--lengths", choices=["full", "uniform", "longtail"], default="uniform")
p.add_argument("--packed", type=int, choices=[0, 1], default=1)
a = p.parse_args()
for k in ("layers", "hidden", "steps", "inputs", "batch", "classes", "threads", "iters"):
    if getattr(a, k) < 1:
        p.error(f"--{k} must be positive")

env_info = setup_env(a.threads)  # re-executes once with the peers' environment, before torch

import torch  # noqa: E402

MASK64 = (1 << 64) - 1


def draw_lengths(kind, batch, T):
    """The benchmark's lengths: the same numbers as cellflow_bench's draw_lengths."""
    if kind == "full":
        return [T] * batch
    state = 20261207
    lo = max(1, T // 4)
    out = []
    for _ in range(batch):
        state = (state + 0x9E3779B97F4A7C15) & MASK64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        z ^= z >> 31
        u = (z >> 11) * 2.0 ** -53
        if kind == "uniform":
            L = lo + math.floor(u * (T - lo + 1))
        else:
            L = max(1, math.ceil(T * u * u * u))
        out.append(min(L, T))
    return out


def flops_per_sample():
    """cellflow_bench's GEMM FLOPs per sample (every step of T counted, as there)."""
    G = 3 if a.cell == "gru" else 4
    H, T, I, C = a.hidden, a.steps, a.inputs, a.classes
    fwd = sum(2 * T * ((I if l == 0 else H) + H) * G * H for l in range(a.layers))
    head = 2 * H * C
    return 3 * fwd - 2 * T * I * G * H + 3 * head, fwd + head


torch.set_num_threads(a.threads)
torch.manual_seed(0)
lengths = draw_lengths(a.lengths, a.batch, a.steps)
len_t = torch.tensor(lengths, dtype=torch.int64)
rnn = (torch.nn.LSTM if a.cell == "lstm" else torch.nn.GRU)(a.inputs, a.hidden, a.layers, batch_first=True)
head = torch.nn.Linear(a.hidden, a.classes)
params = list(rnn.parameters()) + list(head.parameters())
opt = torch.optim.Adam(params, lr=1e-3)
x = torch.rand(a.batch, a.steps, a.inputs)
y = torch.randint(0, a.classes, (a.batch,))
last = (len_t - 1).clamp(min=0)


def logits_of(inp):
    if a.packed:
        packed = torch.nn.utils.rnn.pack_padded_sequence(inp, len_t, batch_first=True, enforce_sorted=False)
        _, state = rnn(packed)
        h = (state[0] if a.cell == "lstm" else state)[-1]  # top layer, after each example's last step
    else:
        out, _ = rnn(inp)
        h = out[torch.arange(a.batch), last]  # the top layer's output at step L_b - 1
    return head(h)


train_flops, infer_flops = flops_per_sample()
rec = {"impl": "torch " + torch.__version__, "cell": a.cell, "variant": "nn.LSTM" if a.cell == "lstm" else "nn.GRU",
       "layers": a.layers, "hidden": a.hidden, "steps": a.steps, "inputs": a.inputs, "batch": a.batch,
       "threads": a.threads, "iters": a.iters, "warmup": a.warmup, "lengths": a.lengths,
       "mean_length": round(sum(lengths) / len(lengths), 3), "packed": a.packed,
       "malloc": env_info["malloc"],
       "blas_path": OPENBLAS_OPENMP if OPENBLAS_OPENMP in os.environ.get("LD_LIBRARY_PATH", "") else "default",
       "blas": loaded_blas()}

if "train" in a.mode:
    times, loss0, loss = [], None, None
    for it in range(a.warmup + a.iters):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        l = torch.nn.functional.cross_entropy(logits_of(x), y)
        l.backward()
        opt.step()
        s = time.perf_counter() - t0
        loss = l.item()
        loss0 = loss if loss0 is None else loss0
        if it >= a.warmup:
            times.append(s)
    med = statistics.median(times)
    rec.update({"train_samples_per_s": round(a.batch / med, 2), "train_ms_median": round(med * 1e3, 3),
                "train_ms_min": round(min(times) * 1e3, 3), "train_gflops": round(train_flops * a.batch / med / 1e9, 2),
                "loss_first": round(loss0, 4), "loss_last": round(loss, 4)})

if "infer" in a.mode:
    times = []
    with torch.inference_mode():
        for it in range(a.warmup + a.iters):
            t0 = time.perf_counter()
            logits = logits_of(x)
            s = time.perf_counter() - t0
            assert logits.shape[0] == a.batch
            if it >= a.warmup:
                times.append(s)
    med = statistics.median(times)
    rec.update({"infer_samples_per_s": round(a.batch / med, 2), "infer_ms_median": round(med * 1e3, 3),
                "infer_ms_min": round(min(times) * 1e3, 3), "infer_gflops": round(infer_flops * a.batch / med / 1e9, 2)})

rec["scope"] = "full step: forward, loss, backward, Adam; infer: forward to logits"
print(json.dumps(rec))
