#!/usr/bin/env python3
"""Matrix-product FLOPs per sample of the seed model's training step and inference pass, for any
configuration (the convention is in FLOPS.md). Standard library only.

  python3 benchmarks/peers/flops.py                      # the seed model, all three cells
  python3 benchmarks/peers/flops.py --cell gru --hidden 256 --steps 100 --json
"""
import argparse
import json

GATES = {"lstm": 4, "peephole": 4, "gru": 3, "gru_v": 3}


def flops(cell, layers=3, hidden=150, steps=28, inputs=28, classes=10, head=True):
    """Returns (train, infer): FLOPs per sample of one training step and one inference pass.

    2*M*N*K per matrix product, every step counted (also the products with the zero state at
    t = 0); training = forward + weight gradients + gradients of h_{t-1} and of the inputs of
    layers 2..L (not of the data). head=False leaves out the dense head (what the oneDNN peer
    times)."""
    g = GATES[cell]
    widths = [inputs] + [hidden] * (layers - 1)
    forward = sum(2 * steps * (w + hidden) * g * hidden for w in widths)
    data_grad = 2 * steps * inputs * g * hidden  # dL/dx of layer 1: not needed, not counted
    h = 2 * hidden * classes if head else 0
    return forward + (2 * forward - data_grad) + 3 * h, forward + h


def main():
    p = argparse.ArgumentParser(description="FLOPs per sample (FLOPS.md)")
    p.add_argument("--cell", choices=sorted(GATES), action="append")
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--hidden", type=int, default=150)
    p.add_argument("--steps", type=int, default=28)
    p.add_argument("--inputs", type=int, default=28)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--batch", type=int, default=150, help="for the per-batch figures")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    for cell in a.cell or ["lstm", "gru", "peephole"]:
        cfg = dict(layers=a.layers, hidden=a.hidden, steps=a.steps, inputs=a.inputs, classes=a.classes)
        train, infer = flops(cell, **cfg)
        rtrain, rinfer = flops(cell, head=False, **cfg)
        r = {"cell": cell, **cfg, "batch": a.batch, "train_mflop_per_sample": round(train / 1e6, 3),
             "infer_mflop_per_sample": round(infer / 1e6, 3), "rnn_only_train_mflop_per_sample": round(rtrain / 1e6, 3),
             "rnn_only_infer_mflop_per_sample": round(rinfer / 1e6, 3),
             "train_mflop_per_batch": round(train * a.batch / 1e6, 2), "infer_mflop_per_batch": round(infer * a.batch / 1e6, 2)}
        if a.json:
            print(json.dumps(r))
        else:
            print(f"{cell}: training step {r['train_mflop_per_sample']} MFLOP/sample "
                  f"({r['train_mflop_per_batch']} per batch of {a.batch}), inference {r['infer_mflop_per_sample']} "
                  f"MFLOP/sample; RNN only {r['rnn_only_train_mflop_per_sample']} / {r['rnn_only_infer_mflop_per_sample']}")


if __name__ == "__main__":
    main()
