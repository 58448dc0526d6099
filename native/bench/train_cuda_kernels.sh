#!/usr/bin/env bash
# Builds and runs the CUDA training kernels' checker/benchmark (train_cuda_kernels.cu).
#
#   LLAMA_CPP_DIR=/path/to/llama.cpp native/bench/train_cuda_kernels.sh [--build-only]
#
# ggml-base (the reference quantizers and dequantizers) is built once, CPU only, into
# $GGML_BUILD_DIR (default /tmp/ggml-build); the checker is compiled with nvcc for
# $CUDA_ARCH (default sm_90a) into $BIN (default /tmp/train_cuda_kernels/train_cuda_kernels).
# Exit status: the checker's (1: a check failed, 2: no CUDA device), or the build's.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
LLAMA_CPP_DIR="${LLAMA_CPP_DIR:-$root/native/deps/llama.cpp}"
GGML_BUILD_DIR="${GGML_BUILD_DIR:-/tmp/ggml-build}"
CUDA_ARCH="${CUDA_ARCH:-sm_90a}"
BIN="${BIN:-/tmp/train_cuda_kernels/train_cuda_kernels}"
JOBS="${JOBS:-16}"

[ -f "$LLAMA_CPP_DIR/ggml/include/ggml.h" ] || { echo "LLAMA_CPP_DIR=$LLAMA_CPP_DIR is not a llama.cpp tree" >&2; exit 1; }
command -v nvcc >/dev/null || { echo "nvcc is not on PATH" >&2; exit 1; }

find_lib() { find "$GGML_BUILD_DIR" -name "lib$1.a" -print -quit 2>/dev/null; }

if [ -z "$(find_lib ggml-base)" ] || [ -z "$(find_lib ggml-cpu)" ]; then
    echo "== building ggml-base, ggml-cpu (CPU only) in $GGML_BUILD_DIR"
    # From the llama.cpp root: a trimmed tree may lack what ggml's standalone project needs.
    cmake -S "$LLAMA_CPP_DIR" -B "$GGML_BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
        -DGGML_CUDA=OFF -DGGML_OPENMP=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF \
        -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_COMMON=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF >/dev/null
    cmake --build "$GGML_BUILD_DIR" --target ggml-base ggml-cpu -j"$JOBS" >/dev/null
fi
ggml_base="$(find_lib ggml-base)"
libs=("$ggml_base" -lpthread -lm)
# A ggml-base built with OpenMP (an existing build dir) needs libgomp.
if nm -u "$ggml_base" 2>/dev/null | grep GOMP_ >/dev/null; then libs+=(-lgomp); fi

echo "== building $BIN ($CUDA_ARCH)"
obj="$(dirname "$BIN")/obj"
mkdir -p "$obj"
inc=(-I "$root/native/src" -I "$here" -I "$LLAMA_CPP_DIR/ggml/include")
# The references keep their own rounding: no FMA contraction (the optimizer check is exact).
g++ -std=c++17 -O2 -ffp-contract=off -pthread "${inc[@]}" -c "$here/train_cuda_kernels_ref.cpp" -o "$obj/ref.o"
g++ -std=c++17 -O2 -pthread "${inc[@]}" -c "$root/native/src/train/thread_pool.cpp" -o "$obj/thread_pool.o"
g++ -std=c++17 -O2 -ffp-contract=off "${inc[@]}" -c "$root/native/src/train/optimizer.cpp" -o "$obj/optimizer.o"
nvflags=(-std=c++17 -O3 "-gencode=arch=compute_${CUDA_ARCH#sm_},code=$CUDA_ARCH" "${inc[@]}")
pids=()
for k in dequant embedding rmsnorm rope elementwise cross_entropy adamw; do
    nvcc "${nvflags[@]}" -c "$root/native/src/train/cuda/$k.cu" -o "$obj/$k.o" & pids+=($!)
done
nvcc "${nvflags[@]}" -Xcompiler -ffp-contract=off -c "$here/train_cuda_kernels.cu" -o "$obj/main.o" & pids+=($!)
for p in "${pids[@]}"; do wait "$p"; done
nvcc "${nvflags[@]}" -o "$BIN" "$obj"/*.o "${libs[@]}"

[ "${1:-}" = "--build-only" ] && exit 0
echo "== running $BIN"
exec "$BIN"
