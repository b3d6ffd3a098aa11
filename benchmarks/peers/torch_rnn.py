#!/usr/bin/env python3
"""PyTorch peer of cellflow_bench: the seed model (L stacked LSTM/GRU layers of H units over T
steps of I inputs, a dense 10-way head on the top layer's last h, cross-entropy, Adam 1e-3).

  train  one full training step: zero_grad, forward to logits, cross_entropy, backward, Adam
  infer  forward to logits under torch.inference_mode()

--cell lstm / gru: torch.nn.LSTM / torch.nn.GRU (ATen's native CPU RNN; nn.GRU is the
linear-before-reset GRU). --cell peephole: a hand-written peephole LSTM (input and forget gates
see c_{t-1}, the output gate sees c_t), the input projection of all steps as one matrix product
per layer and the time loop in TorchScript.

Run with Debian's /usr/bin/python3 (python3-torch). Before importing torch the script re-executes
itself once with the two settings that README.md ("PyTorch setup") explains: the OpenMP build of
OpenBLAS first on LD_LIBRARY_PATH, and glibc malloc tunables that keep freed activations mapped.
Prints one JSON line per mode, with the field names of cellflow_bench.

  /usr/bin/python3 benchmarks/peers/torch_rnn.py --cell lstm --threads 2 --iters 30 --warmup 5
"""
import argparse
import json
import os
import statistics
import sys
import time

from flops import flops

OPENBLAS_OPENMP = "/usr/lib/x86_64-linux-gnu/openblas-openmp"
MALLOC_TUNABLES = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967296"
_MARK = "CELLFLOW_PEER_ENV"


def setup_env(threads, blas="openmp", malloc="tuned"):
    """Re-executes this process once with the peer environment: thread counts for OpenMP and
    OpenBLAS, the OpenMP OpenBLAS (blas="openmp") and the malloc tunables (malloc="tuned").
    Must run before torch is imported. Returns a dict describing what was set."""
    if os.environ.get(_MARK) != "1":
        env = dict(os.environ)
        env[_MARK] = "1"
        env["OMP_NUM_THREADS"] = str(threads)
        env["OPENBLAS_NUM_THREADS"] = str(threads)
        if blas == "openmp" and os.path.isdir(OPENBLAS_OPENMP):
            env["LD_LIBRARY_PATH"] = OPENBLAS_OPENMP + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
        if malloc == "tuned":
            env["GLIBC_TUNABLES"] = MALLOC_TUNABLES
        os.execve(sys.executable, [sys.executable] + sys.argv, env)
    return {"malloc": "tuned" if os.environ.get("GLIBC_TUNABLES") == MALLOC_TUNABLES else "system"}


def loaded_blas():
    """The OpenBLAS shared object this process actually mapped (from /proc/self/maps)."""
    try:
        with open("/proc/self/maps") as f:
            libs = sorted({line.split()[-1] for line in f if "openblas" in line and line.split()[-1].startswith("/")})
    except OSError:
        return "unknown"
    return libs[-1] if libs else "none"


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cell", choices=["lstm", "gru", "peephole"], default="lstm")
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
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--blas", choices=["openmp", "system"], default="openmp",
                   help="openmp: load libopenblas0-openmp (default); system: whatever libblas.so.3 is")
    p.add_argument("--malloc", choices=["tuned", "system"], default="tuned")
    a = p.parse_args(argv)
    for k in ("layers", "hidden", "steps", "inputs", "batch", "classes", "threads", "iters"):
        if getattr(a, k) < 1:
            p.error(f"--{k} must be positive")
    if a.warmup < 0:
        p.error("--warmup must be >= 0")
    return a


def build(a, torch):
    nn = torch.nn

    @torch.jit.script
    def peephole_loop(xw, w_h, p_i, p_f, p_o, h, c):
        # xw: [T, N, 4H] input projections (bias included); gate blocks i, g (new input), f, o
        outs = []
        for t in range(xw.size(0)):
            z = xw[t] + torch.mm(h, w_h)
            zi, zg, zf, zo = z.chunk(4, 1)
            i = torch.sigmoid(zi + p_i * c)
            f = torch.sigmoid(zf + p_f * c)
            c = f * c + i * torch.tanh(zg)
            o = torch.sigmoid(zo + p_o * c)
            h = o * torch.tanh(c)
            outs.append(h)
        return torch.stack(outs)

    class PeepholeLSTM(nn.Module):
        def __init__(self, inputs, hidden):
            super().__init__()
            r = hidden ** -0.5
            self.hidden = hidden
            self.w_x = nn.Parameter(torch.empty(inputs, 4 * hidden).uniform_(-r, r))
            self.w_h = nn.Parameter(torch.empty(hidden, 4 * hidden).uniform_(-r, r))
            self.b = nn.Parameter(torch.zeros(4 * hidden))
            self.p = nn.Parameter(torch.empty(3, hidden).uniform_(-r, r))

        def forward(self, x):  # x: [T, N, D] -> [T, N, H]
            T, N, D = x.shape
            xw = torch.addmm(self.b, x.reshape(T * N, D), self.w_x).reshape(T, N, -1)
            z = x.new_zeros(N, self.hidden)
            return peephole_loop(xw, self.w_h, self.p[0], self.p[1], self.p[2], z, z)

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            if a.cell == "peephole":
                self.rnn = nn.ModuleList(
                    [PeepholeLSTM(a.inputs if l == 0 else a.hidden, a.hidden) for l in range(a.layers)])
            else:
                self.rnn = (nn.LSTM if a.cell == "lstm" else nn.GRU)(a.inputs, a.hidden, a.layers)
            self.head = nn.Linear(a.hidden, a.classes)

        def forward(self, x):  # time-major [T, N, I]
            if a.cell == "peephole":
                for layer in self.rnn:
                    x = layer(x)
                top = x[-1]
            else:
                top = self.rnn(x)[0][-1]
            return self.head(top)

    return Model()


def median_ms(times):
    return statistics.median(times) * 1e3


def main():
    a = parse()
    env = setup_env(a.threads, a.blas, a.malloc)
    import torch

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    model = build(a, torch)
    x = torch.rand(a.steps, a.batch, a.inputs)
    y = torch.randint(0, a.classes, (a.batch,))
    variant = {"lstm": "nn.LSTM", "gru": "nn.GRU", "peephole": "peephole LSTM (TorchScript loop)"}[a.cell]
    base = {"impl": "torch", "cell": a.cell, "variant": variant, "dtype": "f32", "layers": a.layers,
            "hidden": a.hidden, "steps": a.steps, "inputs": a.inputs, "batch": a.batch, "threads": a.threads,
            "iters": a.iters, "warmup": a.warmup}
    info = {"torch_version": torch.__version__, "torch_threads": torch.get_num_threads(), "blas": loaded_blas(),
            "malloc": env["malloc"]}
    modes = a.mode.split(",")
    train_flops, infer_flops = flops(a.cell, a.layers, a.hidden, a.steps, a.inputs, a.classes)
    if "train" in modes:
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        times, losses = [], []
        for it in range(a.warmup + a.iters):
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            dt = time.perf_counter() - t0
            losses.append(loss.item())
            if it >= a.warmup:
                times.append(dt)
        ms = median_ms(times)
        print(json.dumps({**base, "mode": "train", "train_samples_per_s": round(a.batch / ms * 1e3, 2),
                          "train_ms_median": round(ms, 3), "train_ms_min": round(min(times) * 1e3, 3),
                          "train_gflops": round(train_flops * a.batch / ms / 1e6, 2),
                          "loss_first": round(losses[0], 4), "loss_last": round(losses[-1], 4), **info,
                          "scope": "full step: forward, loss, backward, Adam"}), flush=True)
    if "infer" in modes:
        times = []
        with torch.inference_mode():
            for it in range(a.warmup + a.iters):
                t0 = time.perf_counter()
                logits = model(x)
                dt = time.perf_counter() - t0
                if logits.shape != (a.batch, a.classes):
                    raise SystemExit("unexpected logits shape")
                if it >= a.warmup:
                    times.append(dt)
        ms = median_ms(times)
        print(json.dumps({**base, "mode": "infer", "infer_samples_per_s": round(a.batch / ms * 1e3, 2),
                          "infer_ms_median": round(ms, 3), "infer_ms_min": round(min(times) * 1e3, 3),
                          "infer_gflops": round(infer_flops * a.batch / ms / 1e6, 2), **info,
                          "scope": "infer: forward to logits"}), flush=True)


if __name__ == "__main__":
    main()
