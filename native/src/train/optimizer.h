// AdamW (decoupled weight decay, as torch.optim.AdamW) and gradient clipping by global norm.
#pragma once

#include <cstdint>

namespace selftune::train {

struct AdamWConfig {
    float beta1 = 0.9f;
    float beta2 = 0.999f;
    float eps = 1e-8f;
    float weight_decay = 0.0f;
};

struct AdamWStep {
    AdamWConfig config;
    float lr = 0.0f;
    int64_t t = 1;             // 1-based update count (bias correction)
    float grad_mult = 1.0f;    // applied to the gradient first: clipping (and nothing else)
};

// p <- p - lr * wd * p;  m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2;
// p <- p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps),   g = grad_mult * grad
void adamw_update(float * p, const float * grad, float * m, float * v, int64_t n, const AdamWStep & s);

// The multiplier that brings a gradient of norm `norm` down to `max_norm` (1 when it is
// already within, or when max_norm <= 0: clipping off). torch's clip_grad_norm_ rule.
float clip_multiplier(double norm, float max_norm);

}  // namespace selftune::train
