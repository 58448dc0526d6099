#include "train/cuda/lora_linear.cuh"

#include "train/cuda/kernels.cuh"
#include "train/cuda/status.h"

#include "ggml.h"

namespace selftune::train::cuda {

namespace {

__global__ void bias_round_kernel(bf16 * y, const float * y32, const float * bias, int64_t O, int64_t n) {
    for (int64_t k = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; k < n; k += (int64_t) gridDim.x * blockDim.x) {
        const float b = bias ? bias[k % O] : 0.0f;
        y[k] = __float2bfloat16_rn(y32[k] + b);
    }
}

// y = bf16(y32 + bias): the single rounding of a bf16 projection output.
void bias_round(bf16 * y, const float * y32, const float * bias, int64_t N, int64_t O, cudaStream_t stream) {
    const int64_t n = N * O;
    if (n == 0) return;
    const int64_t blocks = (n + 255) / 256;
    bias_round_kernel<<<(unsigned) (blocks < 65535 * 8 ? blocks : 65535 * 8), 256, 0, stream>>>(y, y32, bias, O, n);
    check_cuda(cudaGetLastError(), "bias_round");
}

// The adapter's input: x, or dropout(x) in scratch.
const bf16 * adapter_input(const LinearContext & c, const bf16 * x, int64_t N, int64_t I, const LoraLinear & l) {
    if (l.dropout_p <= 0.0f) return x;
    dropout(c.scratch.x_drop, x, N, I, l.dropout_key, l.dropout_p, c.stream);
    return c.scratch.x_drop;
}

}  // namespace

const bf16 * base_weight_bf16(const LinearContext & c, const BaseLinear & W) {
    if (W.type == GGML_TYPE_BF16) return static_cast<const bf16 *>(W.w);
    dequantize_bf16(c.scratch.weight, W.w, W.type, W.n_out, W.n_in, c.stream);
    return c.scratch.weight;
}

void lora_linear_forward(const LinearContext & c, bf16 * y, const bf16 * x, int64_t N, const BaseLinear & W,
                         const LoraLinear * lora, bf16 * u) {
    const int64_t I = W.n_in, O = W.n_out;
    const bf16 * w = base_weight_bf16(c, W);
    if (!lora && !W.bias) {
        gemm_xwt(c.blas, y, OutType::bf16, x, w, N, I, O);
        return;
    }
    if (lora && !W.bias && O > I) {
        // The expanding projections (gate, up: a step's largest tensors, N x F): the adapter's
        // term first, rounded to bf16, then the base product accumulated onto it in f32 and
        // rounded once more. Three bf16 passes over y instead of four f32 ones (this traffic
        // was ~10% of a 1.5b step). The extra rounding of the adapter's term costs accuracy
        // (measured: gradients 2.8e-2 -> 3.9e-2 rel L2 against the CPU on stories260K when
        // q/k/v took this path too), so the narrower projections keep one rounding.
        gemm_xwt(c.blas, u, OutType::bf16, adapter_input(c, x, N, I, *lora), lora->A, N, I, lora->rank);
        gemm_xwt(c.blas, y, OutType::bf16, u, lora->B, N, lora->rank, O, lora->scale, 0.0f);
        gemm_xwt(c.blas, y, OutType::bf16, x, w, N, I, O, 1.0f, 1.0f);
        return;
    }
    float * y32 = c.scratch.y32;
    gemm_xwt(c.blas, y32, OutType::f32, x, w, N, I, O);
    if (lora) {
        gemm_xwt(c.blas, u, OutType::bf16, adapter_input(c, x, N, I, *lora), lora->A, N, I, lora->rank);
        gemm_xwt(c.blas, y32, OutType::f32, u, lora->B, N, lora->rank, O, lora->scale, 1.0f);
    }
    bias_round(y, y32, W.bias, N, O, c.stream);
}

void lora_linear_forward_add(const LinearContext & c, float * y, const bf16 * x, int64_t N, const BaseLinear & W,
                             const LoraLinear * lora, bf16 * u) {
    const int64_t I = W.n_in, O = W.n_out;
    if (y) gemm_xwt(c.blas, y, OutType::f32, x, base_weight_bf16(c, W), N, I, O, 1.0f, 1.0f);
    if (!lora) return;
    gemm_xwt(c.blas, u, OutType::bf16, adapter_input(c, x, N, I, *lora), lora->A, N, I, lora->rank);
    if (y) gemm_xwt(c.blas, y, OutType::f32, u, lora->B, N, lora->rank, O, lora->scale, 1.0f);
}

void lora_linear_backward(const LinearContext & c, float * dx, bool accumulate, const bf16 * dy, const bf16 * x,
                          int64_t N, const BaseLinear & W, const LoraLinear * lora, const bf16 * u) {
    const int64_t I = W.n_in, O = W.n_out;
    if (dx) gemm_dyw(c.blas, dx, OutType::f32, dy, base_weight_bf16(c, W), N, I, O, 1.0f, accumulate ? 1.0f : 0.0f);
    if (!lora) return;
    const int64_t r = lora->rank;
    // y += scale * B u:  dB += scale * dy^T u;  gu = scale * dy B
    gemm_dytx(c.blas, lora->dB, dy, u, N, r, O, lora->scale, 1.0f);
    bf16 * gu = c.scratch.gu;
    gemm_dyw(c.blas, gu, OutType::bf16, dy, lora->B, N, r, O, lora->scale, 0.0f);
    // u = A xd:  dA += gu^T xd;  dxd = gu A;  dx += mask * dxd
    gemm_dytx(c.blas, lora->dA, gu, adapter_input(c, x, N, I, *lora), N, I, r, 1.0f, 1.0f);
    if (!dx) return;
    if (lora->dropout_p > 0.0f) {
        gemm_dyw(c.blas, c.scratch.dx_drop, OutType::f32, gu, lora->A, N, I, r, 1.0f, 0.0f);
        dropout_backward_add(dx, c.scratch.dx_drop, N, I, lora->dropout_key, lora->dropout_p, c.stream);
    } else {
        gemm_dyw(c.blas, dx, OutType::f32, gu, lora->A, N, I, r, 1.0f, 1.0f);
    }
}

}  // namespace selftune::train::cuda
