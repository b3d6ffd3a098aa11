#!/usr/bin/env python3
"""Writes the IDX fuzzer's seed corpus into tests/fuzz/corpus/idx/ (standard library only).

Run once from the repository root: python3 tests/fuzz/make_idx_seeds.py
Seeds: the first 3 test images and labels of the shipped MNIST subset, raw and gzip, plus a few
near-misses (truncated, wrong magic, zero dimension, absurd dimension, trailing bytes, a
two-member gzip). Small on purpose: libFuzzer mutates them.
"""
import gzip
import os
import struct

root = os.path.dirname(os.path.abspath(__file__))
data = os.path.join(root, "..", "..", "data", "mnist-subset")
out = os.path.join(root, "corpus", "idx")
os.makedirs(out, exist_ok=True)

with gzip.open(os.path.join(data, "t10k-images-idx3-ubyte.gz")) as f:
    magic, n, rows, cols = struct.unpack(">IIII", f.read(16))
    pixels = f.read(3 * rows * cols)
with gzip.open(os.path.join(data, "t10k-labels-idx1-ubyte.gz")) as f:
    f.read(8)
    labels = f.read(3)

images = struct.pack(">IIII", 0x803, 3, rows, cols) + pixels
label_file = struct.pack(">II", 0x801, 3) + labels
seeds = {
    "images3.idx": images,
    "labels3.idx": label_file,
    "images3.idx.gz": gzip.compress(images, mtime=0),
    "labels3.idx.gz": gzip.compress(label_file, mtime=0),
    "two_members.gz": gzip.compress(images[:100], mtime=0) + gzip.compress(images[100:], mtime=0),
    "truncated.idx": images[:500],
    "wrong_magic.idx": struct.pack(">IIII", 0x801, 3, rows, cols) + pixels,
    "zero_dim.idx": struct.pack(">IIII", 0x803, 0, rows, cols),
    "absurd_dim.idx": struct.pack(">IIII", 0x803, 0x7FFFFFFF, rows, cols) + pixels[:64],
    "trailing.idx": label_file + b"\0\0",
    "small.idx": struct.pack(">IIII", 0x803, 1, 2, 2) + bytes([0, 64, 128, 255]),
}
for name, blob in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(blob)
print(f"wrote {len(seeds)} seeds to {out}")
