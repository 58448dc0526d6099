// LoRA parameters: which projections carry an adapter and where each adapter's A and B
// live in one flat parameter vector.
//
// A flat vector (rather than one buffer per matrix) keeps the optimizer, gradient norm,
// checkpoints and a future device backend to one loop / one copy. Each slot's matrices are
// stored exactly in llama.cpp's adapter layout, so writing the adapter is a copy:
//   A: ggml [n_in, r]  = r rows of n_in     (row-major A[r][n_in])
//   B: ggml [r, n_out] = n_out rows of r    (row-major B[n_out][r])
// and the layer computes y = W x + scale * B (A x), scale = alpha / r (llama.cpp's
// get_scale with adapter scale 1).
#pragma once

#include "train/model_config.h"

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace selftune::train {

enum LoraTarget : int { kQ = 0, kK, kV, kO, kGate, kUp, kDown, kNumTargets };

// "q", "k", "v", "o", "gate", "up", "down"
const char * lora_target_name(int t);
// -1 for an unknown name.
int lora_target_from_name(const std::string & name);
// The base tensor a target adapts, e.g. "blk.3.attn_q.weight".
std::string lora_base_tensor_name(int layer, int target);

constexpr uint32_t kAllTargets = (1u << kNumTargets) - 1;

struct LoraConfig {
    int32_t rank = 16;
    float alpha = 32.0f;
    float dropout = 0.05f;
    uint32_t targets = kAllTargets;   // bit t set: target t adapted in every layer

    float scale() const { return alpha / (float) rank; }
};

struct LoraSlot {
    int32_t layer = 0;
    int32_t target = 0;
    int64_t n_in = 0, n_out = 0;
    int64_t a_offset = 0;   // A: rank * n_in values
    int64_t b_offset = 0;   // B: n_out * rank values
};

struct LoraLayout {
    LoraConfig config;
    std::vector<LoraSlot> slots;
    std::vector<std::array<int32_t, kNumTargets>> slot_of;   // [layer][target] -> slot, -1 none
    int64_t n_params = 0;

    const LoraSlot * find(int layer, int target) const {
        const int32_t s = slot_of[(size_t) layer][(size_t) target];
        return s < 0 ? nullptr : &slots[(size_t) s];
    }
};

// Throws std::invalid_argument on a bad config (rank < 1, alpha <= 0, dropout outside [0,1),
// no targets).
LoraLayout make_lora_layout(const ModelConfig & model, const LoraConfig & config);

// A ~ U(-1/sqrt(n_in), 1/sqrt(n_in)) (PEFT's kaiming_uniform_(a=sqrt(5))), B = 0: the adapter
// starts as the identity function and A's scale keeps A x near unit size.
void lora_init(const LoraLayout & layout, float * params, uint64_t seed);

}  // namespace selftune::train
