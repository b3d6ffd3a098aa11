#!/usr/bin/env bash
# Installs the Debian 12 (bookworm) packages the benchmark peers need, with apt-get only
# (nothing from PyPI or elsewhere). Run as root or with sudo.
#
#   benchmarks/peers/install.sh
#
#   python3-torch        PyTorch 1.13 for Debian's /usr/bin/python3 (torch_rnn.py, torch_stream.py)
#   python3-numpy        needed by python3-torch
#   libopenblas0-openmp  the OpenMP build of OpenBLAS; torch_rnn.py loads it instead of the
#                        default pthread build (README.md, "PyTorch setup"); it installs with a
#                        lower priority, so the system's default libblas.so.3 does not change
#   libdnnl-dev          oneDNN 2.6 headers and library (onednn_rnn.cpp, gemm_peak.cpp)
#   libeigen3-dev        Eigen 3.4 (gemm_peak.cpp; cellflow needs it anyway)
#   g++                  to build the C++ peers
set -euo pipefail
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
  g++ libeigen3-dev libdnnl-dev libopenblas0-openmp python3 python3-numpy python3-torch
