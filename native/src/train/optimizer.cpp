#include "train/optimizer.h"

#include <cmath>

namespace selftune::train {

void adamw_update(float * p, const float * grad, float * m, float * v, int64_t n, const AdamWStep & s) {
    const AdamWConfig & c = s.config;
    const float bc1 = 1.0f - (float) std::pow((double) c.beta1, (double) s.t);
    const float bc2 = 1.0f - (float) std::pow((double) c.beta2, (double) s.t);
    const float decay = 1.0f - s.lr * c.weight_decay;
    for (int64_t i = 0; i < n; i++) {
        const float g = grad[i] * s.grad_mult;
        m[i] = c.beta1 * m[i] + (1.0f - c.beta1) * g;
        v[i] = c.beta2 * v[i] + (1.0f - c.beta2) * g * g;
        const float mhat = m[i] / bc1;
        const float vhat = v[i] / bc2;
        p[i] = p[i] * decay - s.lr * mhat / (std::sqrt(vhat) + c.eps);
    }
}

float clip_multiplier(double norm, float max_norm) {
    if (max_norm <= 0.0f || !(norm > (double) max_norm)) return 1.0f;
    return (float) ((double) max_norm / (norm + 1e-6));
}

}  // namespace selftune::train
