#!/usr/bin/env bash
# Builds and runs the CUDA attention checker + benchmark (native/bench/train_cuda_attention.cu)
# on an sm_90 GPU. Arguments go to the binary: --no-check, --no-bench.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p native/build/bench
nvcc -std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a -I native/src \
    native/bench/train_cuda_attention.cu native/src/train/cuda/attention.cu \
    -o native/build/bench/train_cuda_attention
native/build/bench/train_cuda_attention "$@"
