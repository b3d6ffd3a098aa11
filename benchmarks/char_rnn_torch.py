#!/usr/bin/python3
"""PyTorch side of the char_rnn benchmark: the model of examples/char_rnn.cpp, trained on the same
text, split, streams, chunks and hyper-parameters for the same number of steps, then evaluated on
the same validation streams. Prints the figures char_rnn prints (training characters per second,
validation loss and bits per character) as one JSON line.

Run with Debian's /usr/bin/python3 (python3-torch 1.13):

    /usr/bin/python3 benchmarks/char_rnn_torch.py --max-steps 200 --threads 2
    build/examples/char_rnn --epochs 1 --max-steps 200 --threads 2     # the cellflow side

The model, layer for layer (TF1 names in brackets):
  * nn.Embedding(V, E) [embedding], glorot_uniform over [V, E] as tf.get_variable's default;
  * nn.LSTM(E, U, num_layers=L, batch_first=True) [rnn/multi_rnn_cell/cell_l/basic_lstm_cell]:
    each layer's weights are drawn as TF's kernel [in + U, 4U] (glorot_uniform), gate columns
    i, j, f, o, and copied into PyTorch's weight_ih / weight_hh (rows i, f, g, o); BasicLSTMCell's
    forget_bias 1.0 is bias_ih's forget rows (bias_hh is zero and not trained, so the layer has
    TF's one bias);
  * nn.Linear(U, V) [dense], glorot_uniform kernel, zero bias, on every step;
  * the mean cross-entropy over batch x steps (sequence_loss with unit weights),
    clip_grad_norm_(5), Adam(lr, 0.9, 0.999, 1e-8) (PyTorch's form of epsilon: the same up to the
    epsilon term), truncated BPTT with each stream's state carried (detached) into the next chunk.
The weights are drawn from torch's generator, not cellflow's Rng: the two runs start from
different weights of the same distribution.
"""
import argparse
import json
import math
import os
import sys
import time

# Debian's python3-torch does its matrix products through libblas.so.3. The pthread build of
# OpenBLAS (what the alternative points to once libopenblas-pthread-dev is installed) starts its
# own threads beside torch's OpenMP ones and runs an LSTM many times slower; the OpenMP build
# (libopenblas0-openmp) shares torch's threads. Re-run with it first in the library path.
OPENMP_BLAS = "/usr/lib/x86_64-linux-gnu/openblas-openmp"
if os.path.isdir(OPENMP_BLAS) and os.environ.get("CHAR_RNN_TORCH_BLAS") is None:
    env = dict(os.environ, CHAR_RNN_TORCH_BLAS=OPENMP_BLAS,
               LD_LIBRARY_PATH=OPENMP_BLAS + ((":" + os.environ["LD_LIBRARY_PATH"])
                                              if os.environ.get("LD_LIBRARY_PATH") else ""))
    os.execve(sys.executable, [sys.executable] + sys.argv, env)

import torch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

p = argparse.ArgumentParser()
p.add_argument("--text", default=os.path.join(HERE, "..", "data", "kjv", "genesis-exodus.txt"))
p.add_argument("--layers", type=int, default=2)
p.add_argument("--units", type=int, default=512)
p.add_argument("--embedding", type=int, default=64)
p.add_argument("--steps", type=int, default=50)
p.add_argument("--batch", type=int, default=32)
p.add_argument("--lr", type=float, default=0.002)
p.add_argument("--clip-norm", type=float, default=5.0)
p.add_argument("--max-steps", type=int, default=200)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--seed", type=int, default=42)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)

# The text, vocabulary, split and streams of char_rnn.
with open(a.text, "rb") as f:
    chars = f.read().decode("utf-8")
vocab = sorted(set(chars))
index = {c: i for i, c in enumerate(vocab)}
ids = torch.tensor([index[c] for c in chars], dtype=torch.long)
V = len(vocab)
split = len(ids) - len(ids) // 10
train_ids, val_ids = ids[:split], ids[split:]


def streams(x, n):
    length = len(x) // n
    return x[: n * length].view(n, length)


train = streams(train_ids, a.batch)
val_streams = max(1, min(a.batch, len(val_ids) // 2))
val = streams(val_ids, val_streams)


def glorot_(t, fan_in, fan_out):
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        t.uniform_(-limit, limit)
    return t


class CharModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        E, U = a.embedding, a.units
        self.embedding = torch.nn.Embedding(V, E)
        glorot_(self.embedding.weight, V, E)
        self.lstm = torch.nn.LSTM(E, U, num_layers=a.layers, batch_first=True)
        for l in range(a.layers):
            d = E if l == 0 else U
            kernel = glorot_(torch.empty(d + U, 4 * U), d + U, 4 * U)  # TF layout, columns i, j, f, o
            i, j, f, o = kernel.split(U, dim=1)
            torch_order = torch.cat([i, f, j, o], dim=1).t()  # rows i, f, g, o
            with torch.no_grad():
                getattr(self.lstm, "weight_ih_l%d" % l).copy_(torch_order[:, :d])
                getattr(self.lstm, "weight_hh_l%d" % l).copy_(torch_order[:, d:])
                b = getattr(self.lstm, "bias_ih_l%d" % l)
                b.zero_()
                b[U:2 * U] = 1.0  # forget_bias
                getattr(self.lstm, "bias_hh_l%d" % l).zero_()
            getattr(self.lstm, "bias_hh_l%d" % l).requires_grad_(False)
        self.dense = torch.nn.Linear(U, V)
        glorot_(self.dense.weight, U, V)
        with torch.no_grad():
            self.dense.bias.zero_()

    def forward(self, x, state):
        out, state = self.lstm(self.embedding(x), state)
        return self.dense(out), state


model = CharModel()
params = [q for q in model.parameters() if q.requires_grad]
opt = torch.optim.Adam(params, lr=a.lr, betas=(0.9, 0.999), eps=1e-8)
xent = torch.nn.CrossEntropyLoss()

chunks = (train.shape[1] - 1) // a.steps
state = None
losses = []
step = 0
t_train = 0.0
while step < a.max_steps:
    state = None  # each epoch starts the streams afresh
    for k in range(chunks):
        t0 = time.perf_counter()
        x = train[:, k * a.steps:(k + 1) * a.steps]
        y = train[:, k * a.steps + 1:(k + 1) * a.steps + 1]
        if state is not None:
            state = tuple(s.detach() for s in state)
        logits, state = model(x, state)
        loss = xent(logits.reshape(-1, V), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, a.clip_norm)
        opt.step()
        t_train += time.perf_counter() - t0
        losses.append(loss.item())
        step += 1
        if step >= a.max_steps:
            break

# Validation: char_rnn's chunks of max(steps, 200), the state carried.
total, count = 0.0, 0
length = min(val.shape[1] - 1, max(a.steps, 200))
with torch.no_grad():
    state = None
    for start in range(0, val.shape[1] - 1, length):
        n = min(length, val.shape[1] - 1 - start)
        x = val[:, start:start + n]
        y = val[:, start + 1:start + n + 1]
        logits, state = model(x, state)
        total += torch.nn.functional.cross_entropy(logits.reshape(-1, V), y.reshape(-1), reduction="sum").item()
        count += y.numel()

val_loss = total / count
print(json.dumps({"impl": "torch " + torch.__version__, "blas": os.environ.get("CHAR_RNN_TORCH_BLAS", "default"),
                  "threads": a.threads, "steps": step,
                  "layers": a.layers, "units": a.units, "embedding": a.embedding, "batch": a.batch,
                  "bptt": a.steps, "train_chars_per_second": round(step * a.batch * a.steps / t_train, 1),
                  "train_seconds": round(t_train, 2), "train_loss_last_100": round(sum(losses[-100:]) /
                                                                                  len(losses[-100:]), 4),
                  "val_loss": round(val_loss, 4), "val_bpc": round(val_loss / math.log(2), 4)}))
