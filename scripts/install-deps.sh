#!/usr/bin/env bash
# Installs what cellflow's build, tests and examples need on Debian 12 (as root, or via sudo).
# Packages: a C++17 compiler, CMake, pkg-config (its package test), Eigen 3.4, Catch2 (tests), zlib
# (IDX .gz and .npz files), Open MPI (cellflow::mpi, data-parallel training: its headers, library
# and mpirun). Extra packages can be passed as arguments (scripts/test.sh adds clang and
# libclang-rt-14-dev for the fuzzers).
set -euo pipefail
packages=(g++ make cmake pkg-config libeigen3-dev catch2 zlib1g-dev openmpi-bin libopenmpi-dev "$@")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${missing[@]}"
