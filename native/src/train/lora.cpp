#include "train/lora.h"

#include "train/rng.h"

#include <cmath>
#include <stdexcept>

namespace selftune::train {

static const char * const kNames[kNumTargets] = {"q", "k", "v", "o", "gate", "up", "down"};
static const char * const kTensors[kNumTargets] = {"attn_q", "attn_k", "attn_v", "attn_output",
                                                   "ffn_gate", "ffn_up", "ffn_down"};

const char * lora_target_name(int t) {
    return t >= 0 && t < kNumTargets ? kNames[t] : "?";
}

int lora_target_from_name(const std::string & name) {
    for (int t = 0; t < kNumTargets; t++) {
        if (name == kNames[t]) return t;
    }
    return -1;
}

std::string lora_base_tensor_name(int layer, int target) {
    return "blk." + std::to_string(layer) + "." + kTensors[target] + ".weight";
}

LoraLayout make_lora_layout(const ModelConfig & m, const LoraConfig & c) {
    if (c.rank < 1) throw std::invalid_argument("LoRA rank must be >= 1");
    if (!(c.alpha > 0.0f)) throw std::invalid_argument("LoRA alpha must be > 0");
    if (!(c.dropout >= 0.0f && c.dropout < 1.0f)) throw std::invalid_argument("LoRA dropout must be in [0, 1)");
    if ((c.targets & kAllTargets) == 0 || (c.targets & ~kAllTargets) != 0) {
        throw std::invalid_argument("LoRA targets must be a non-empty subset of q,k,v,o,gate,up,down");
    }
    LoraLayout L;
    L.config = c;
    L.slot_of.assign((size_t) m.n_layer, {});
    const int64_t D = m.n_embd, Q = m.q_dim(), KV = m.kv_dim(), F = m.n_ff;
    const int64_t in[kNumTargets] = {D, D, D, Q, D, D, F};
    const int64_t out[kNumTargets] = {Q, KV, KV, D, F, F, D};
    for (int32_t l = 0; l < m.n_layer; l++) {
        for (int t = 0; t < kNumTargets; t++) {
            L.slot_of[(size_t) l][(size_t) t] = -1;
            if (!(c.targets & (1u << t))) continue;
            LoraSlot s;
            s.layer = l;
            s.target = t;
            s.n_in = in[t];
            s.n_out = out[t];
            s.a_offset = L.n_params;
            L.n_params += c.rank * s.n_in;
            s.b_offset = L.n_params;
            L.n_params += s.n_out * c.rank;
            L.slot_of[(size_t) l][(size_t) t] = (int32_t) L.slots.size();
            L.slots.push_back(s);
        }
    }
    return L;
}

void lora_init(const LoraLayout & layout, float * params, uint64_t seed) {
    const RngKey base = RngKey(seed).with(kStreamLoraInit);
    const int64_t r = layout.config.rank;
    for (size_t i = 0; i < layout.slots.size(); i++) {
        const LoraSlot & s = layout.slots[i];
        const RngKey key = base.with((uint64_t) s.layer).with((uint64_t) s.target);
        const float bound = 1.0f / std::sqrt((float) s.n_in);
        float * A = params + s.a_offset;
        for (int64_t k = 0; k < r * s.n_in; k++) A[k] = (2.0f * key.uniform((uint64_t) k) - 1.0f) * bound;
        float * B = params + s.b_offset;
        for (int64_t k = 0; k < s.n_out * r; k++) B[k] = 0.0f;
    }
}

}  // namespace selftune::train
