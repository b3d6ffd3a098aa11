#!/usr/bin/env python3
"""PyTorch side of the streaming benchmark: one sequence (batch 1), one time step at a time
through a 3-layer stack, the state carried between calls, under torch.inference_mode().
Prints one JSON line with microseconds per step. Run with Debian's /usr/bin/python3
(python3-torch); like torch_rnn.py it re-executes itself once with the OpenMP OpenBLAS and the
malloc tunables (README.md, "PyTorch setup")."""
import argparse
import json
import statistics
import time

from torch_rnn import loaded_blas, setup_env

p = argparse.ArgumentParser()
p.add_argument("--cell", choices=["lstm", "gru"], default="lstm")
p.add_argument("--layers", type=int, default=3)
p.add_argument("--hidden", type=int, default=150)
p.add_argument("--inputs", type=int, default=28)
p.add_argument("--threads", type=int, default=1)
p.add_argument("--steps", type=int, default=2000, help="time steps streamed (the first 10%% are not timed)")
a = p.parse_args()
env = setup_env(a.threads)
import torch  # noqa: E402  (after setup_env)

torch.set_num_threads(a.threads)
torch.manual_seed(0)
rnn = (torch.nn.LSTM if a.cell == "lstm" else torch.nn.GRU)(a.inputs, a.hidden, a.layers)
x = torch.rand(a.steps, 1, 1, a.inputs)
times = []
with torch.inference_mode():
    state = None
    for t in range(a.steps):
        t0 = time.perf_counter()
        out, state = rnn(x[t], state)
        times.append(time.perf_counter() - t0)
times = times[a.steps // 10:]
print(json.dumps({"impl": "torch", "cell": a.cell, "variant": "nn.LSTM" if a.cell == "lstm" else "nn.GRU",
                  "mode": "stream", "dtype": "f32", "layers": a.layers, "hidden": a.hidden, "inputs": a.inputs,
                  "batch": 1, "threads": a.threads, "stream_steps": a.steps,
                  "stream_us_per_step_median": round(statistics.median(times) * 1e6, 2),
                  "stream_us_per_step_min": round(min(times) * 1e6, 2),
                  "torch_version": torch.__version__, "blas": loaded_blas(), "malloc": env["malloc"]}))
