#!/usr/bin/env bash
# The CUDA training backend against the CPU backend on the GPU machine, end to end:
# configure a CPU-inference build with the CUDA training backend (SELFTUNE_CUDA=OFF: no
# ggml-cuda), build only the checkers, synthesize the tiny qwen2 and llama models, and run
# selftune-train-cuda-parity on them and on any GGUF given as an argument.
#
#   native/bench/train_cuda_parity.sh [--kernels] [model.gguf ...] [-- parity options]
#
#   e.g.  native/bench/train_cuda_parity.sh /work/shared/models/stories260K.gguf
#
#   --kernels         also build and run selftune-train-cuda-kernels and -attention first
#   BUILD_DIR         build folder (default /tmp/st-cuda-build)
#   MODELS_DIR        where the synthesized models go (default /tmp/st-parity-models); a model
#                     already there is reused, so models made elsewhere can be dropped in
#                     (qwen2-tiny-q8_0.gguf needs the addon to quantize; skipped without it)
#   CUDA_ARCH         SELFTUNE_CUDA_ARCH (default 90a)
#   LLAMA_CPP_DIR     llama.cpp tree (default native/deps/llama.cpp)
#   JOBS              parallel compile jobs (default 16)
#   OUT               when set, every log is also written there
#
# Exit status: the parity checker's (1: a check failed, 2: no device), or the build's.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
BUILD_DIR="${BUILD_DIR:-/tmp/st-cuda-build}"
MODELS_DIR="${MODELS_DIR:-/tmp/st-parity-models}"
CUDA_ARCH="${CUDA_ARCH:-90a}"
LLAMA_CPP_DIR="${LLAMA_CPP_DIR:-$root/native/deps/llama.cpp}"
JOBS="${JOBS:-16}"
LOGS="${OUT:-$BUILD_DIR/logs}"
mkdir -p "$LOGS" "$MODELS_DIR"

kernels=0
models=()
parity_opts=()
while [ $# -gt 0 ]; do
    case "$1" in
        --kernels) kernels=1 ;;
        --) shift; parity_opts=("$@"); break ;;
        *) models+=("$1") ;;
    esac
    shift
done

[ -f "$LLAMA_CPP_DIR/include/llama.h" ] || { echo "LLAMA_CPP_DIR=$LLAMA_CPP_DIR is not a llama.cpp tree" >&2; exit 1; }
command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ] || { echo "nvcc not found" >&2; exit 1; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | tee "$LOGS/gpu.txt" || true

echo "== configure $BUILD_DIR (SELFTUNE_TRAIN_CUDA=ON, SELFTUNE_CUDA=OFF, arch $CUDA_ARCH)"
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
cmake -S "$root/native" -B "$BUILD_DIR" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DSELFTUNE_CUDA=OFF -DSELFTUNE_TRAIN_CUDA=ON -DSELFTUNE_CUDA_ARCH="$CUDA_ARCH" \
    -DLLAMA_CPP_DIR="$LLAMA_CPP_DIR" 2>&1 | tee "$LOGS/configure.log" | tail -3

targets=(selftune-train-cuda-parity)
[ "$kernels" = 1 ] && targets+=(selftune-train-cuda-kernels selftune-train-cuda-attention)
echo "== build ${targets[*]}"
start=$(date +%s)
set +e
cmake --build "$BUILD_DIR" --target "${targets[@]}" -j"$JOBS" >"$LOGS/build.log" 2>&1
brc=$?
set -e
grep -E "error|warning:|FAILED" "$LOGS/build.log" | head -40 || true
[ "$brc" = 0 ] || { tail -30 "$LOGS/build.log"; echo "build failed: $LOGS/build.log" >&2; exit 1; }
echo "   built in $(( $(date +%s) - start )) s"

bin="$BUILD_DIR/bin"
if [ "$kernels" = 1 ]; then
    for k in kernels attention; do
        echo "== selftune-train-cuda-$k"
        "$bin/selftune-train-cuda-$k" 2>&1 | tee "$LOGS/$k.log" || echo "selftune-train-cuda-$k exited $?"
    done
fi

echo "== models in $MODELS_DIR"
synth() {   # name, then `selftune model synth` arguments
    local out="$MODELS_DIR/$1"; shift
    if [ ! -f "$out" ]; then
        (cd "$root" && bun run selftune model synth "$@" --out "$out") >>"$LOGS/synth.log" 2>&1 ||
            { echo "   (could not make $(basename "$out"): $LOGS/synth.log)"; return 0; }
    fi
    [ -f "$out" ] && models=("$out" "${models[@]}")
    return 0
}
if command -v bun >/dev/null; then
    synth llama-tiny-f16.gguf --arch llama --preset tiny --type f16
    synth qwen2-tiny-f32.gguf --arch qwen2 --preset tiny --type f32
    synth qwen2-tiny-q8_0.gguf --arch qwen2 --preset tiny --type q8_0
else
    echo "   bun not found: only the models given on the command line and those already in $MODELS_DIR"
    for f in "$MODELS_DIR"/*.gguf; do [ -f "$f" ] && models=("$f" "${models[@]}"); done
fi
[ ${#models[@]} -gt 0 ] || { echo "no models to check" >&2; exit 2; }

echo "== selftune-train-cuda-parity ${models[*]}"
set +e
"$bin/selftune-train-cuda-parity" "${parity_opts[@]}" "${models[@]}" 2>&1 | tee "$LOGS/parity.log"
rc=${PIPESTATUS[0]}
set -e
echo "== parity exit status $rc (logs: $LOGS)"
exit "$rc"
